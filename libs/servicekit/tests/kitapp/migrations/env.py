from kitapp.app import Note  # noqa: F401
from servicekit.migrations import run_env
from sqlmodel import SQLModel

run_env(SQLModel.metadata)
