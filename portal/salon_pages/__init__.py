"""The owner's pages composed from several subsystems: the onboarding steps page shows the
WhatsApp widget and the activation panel. It sits above both, so neither imports it back:
they are handed what they need of it as functions (see `app.py`)."""
