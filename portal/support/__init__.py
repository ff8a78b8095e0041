"""Support staff: sign-in, the dashboard, the admin API, staff actions and the audit log."""
