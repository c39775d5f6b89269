"""A track's life: which to fetch, the download, its check, its ledger, its figures, its name."""
