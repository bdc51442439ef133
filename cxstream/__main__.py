from cxstream.cli.main import main

main()
