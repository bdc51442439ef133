"""Groups across workers: partition shares gathered over HTTP, and segment drops evaluated
where the shares meet."""
