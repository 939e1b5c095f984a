from vitascope.cli.main import main

main()
