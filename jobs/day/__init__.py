"""An entrant's day: its state, a person's marks, backup files imported, the closed day's package."""
