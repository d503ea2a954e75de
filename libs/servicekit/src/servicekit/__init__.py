"""The one shared library of the suite. It never imports a service."""
