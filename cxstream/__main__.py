from cxstream.cli import main

main()
