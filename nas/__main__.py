from nas.console import main

main()
