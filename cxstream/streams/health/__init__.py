"""Health: metrics, scrape-time collectors, the stall watchdog and readiness."""
