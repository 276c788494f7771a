from halo_patch.cli import main

main()
