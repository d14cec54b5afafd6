"""One module per `fulfillment` command: its arguments and the call to what it runs."""
