"""The dashboard: facts from the state, boards for the results team, pages rendered."""
