"""Motion Server: collects GPS tracks from Motion devices over the event WiFi."""
