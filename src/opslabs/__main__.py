from opslabs.cli import main

main()
