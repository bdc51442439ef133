"""The command line: the cxstream command, the demo, the simulator and the local broker."""
