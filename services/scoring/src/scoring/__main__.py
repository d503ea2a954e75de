"""`python -m scoring serve|migrate`."""

import sys

from servicekit.runner import main
from scoring.app import MIGRATIONS, create_app
from scoring.settings import ScoringSettings

if __name__ == "__main__":
    sys.exit(main(settings_factory=ScoringSettings, app_factory=create_app, migrations_dir=MIGRATIONS))
