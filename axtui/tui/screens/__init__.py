"""The dashboard's screens: five modes, and the dialogs they open."""
