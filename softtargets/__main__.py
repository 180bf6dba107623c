from softtargets.cli import main

main()
