from evalserve.cli.main import main

main()
