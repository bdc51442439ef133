"""Alerting: publishing alerts, the alert cases and their index, and the webhook sink."""
