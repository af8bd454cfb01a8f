"""The buyer's side of SaaS sign-up, simulated: subscribing and the registration form POST."""
