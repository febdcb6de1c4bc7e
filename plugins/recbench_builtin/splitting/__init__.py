"""The built-in split protocols, one ``SPECS`` list per module (collected by ``..splitters``)."""
