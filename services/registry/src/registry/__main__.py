"""`python -m registry serve|migrate`."""

import sys

from servicekit.runner import main
from registry.app import MIGRATIONS, create_app
from registry.settings import RegistrySettings

if __name__ == "__main__":
    sys.exit(main(settings_factory=RegistrySettings, app_factory=create_app, migrations_dir=MIGRATIONS))
