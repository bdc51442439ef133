"""What the tests and the benches share: events to send, a worker or two to run
(support), faults to inject (faults), the soak month (soak) and the reference fold the
core is checked against (reference). Not installed: it runs from a checkout."""
