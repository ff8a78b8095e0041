"""The marketplace landing, the onboarding token and the owner's credential."""
