"""`python -m registry serve|migrate|seed|rotate-keys`."""

import sys

from servicekit.runner import main
from registry.app import MIGRATIONS, create_app
from registry.key_rotation import rotate_command
from registry.seed import seed_command
from registry.settings import RegistrySettings

if __name__ == "__main__":
    sys.exit(main(settings_factory=RegistrySettings, app_factory=create_app, migrations_dir=MIGRATIONS,
                  extra_commands={"seed": seed_command, "rotate-keys": rotate_command}))
