"""The marketplace landing, the onboarding token and the onboarding page."""
