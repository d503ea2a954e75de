"""`python -m alerts serve|migrate`."""

import sys

from servicekit.runner import main
from alerts.app import MIGRATIONS, create_app
from alerts.settings import AlertsSettings

if __name__ == "__main__":
    sys.exit(main(settings_factory=AlertsSettings, app_factory=create_app, migrations_dir=MIGRATIONS))
