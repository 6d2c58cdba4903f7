from dataengine.cli import main

main()
