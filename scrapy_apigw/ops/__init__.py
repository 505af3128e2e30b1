"""The operations layer: metrics, health and admin endpoints, progress and coverage."""
