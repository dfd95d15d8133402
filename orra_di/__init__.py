"""orra-di."""
