"""polysaga's shared platform: settings, messaging, outbox, inbox, the app factory and the CLI.

Every service builds on this package; it imports no service.
"""

__version__ = "0.1.0"
