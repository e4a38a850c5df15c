"""The version `npm run train` (training.release) builds: the GRU as <VERSION>, the LSTM beside it as
<VERSION>-lstm. The one place it is written; a new recipe changes it here."""
VERSION = "1.6.0"
