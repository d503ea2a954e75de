"""`python -m matching serve|migrate`."""

import sys

from servicekit.runner import main
from matching.app import MIGRATIONS, create_app
from matching.settings import MatchingSettings

if __name__ == "__main__":
    sys.exit(main(settings_factory=MatchingSettings, app_factory=create_app, migrations_dir=MIGRATIONS))
