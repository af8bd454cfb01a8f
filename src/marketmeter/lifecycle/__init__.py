"""The subscription lifecycle: agreements' transitions (``transitions``, planning a
subscription in ``subscriptions``), the messages AWS sends about them (``messages``), their
delivery to webhooks (``webhooks``) and the buyer's registration form POST
(``registration_page``). Rules only: no SQL, no HTTP routes; ``types`` holds what the store
may see of them."""
