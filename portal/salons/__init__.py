"""The salon: its record, its typed ids and its event trail."""
