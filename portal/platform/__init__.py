"""Platform: settings, the database and its embedded server, migrations, locks, logs, metrics,
error reporting, health."""
