"""Customer states as the table holds them: the hot record under the customer's id and
its history records (scoring.plain_customer), and the erasure marker's key."""

from __future__ import annotations

import hashlib

from cxstream.scoring import plain_codec as codec
from cxstream.scoring import plain_customer as plain
from cxstream.scoring import plain_models
from cxstream.scoring.customer import CustomerState


def encode_customer(partition: int, state: CustomerState, kept_ids: int
                    ) -> dict[bytes, bytes]:
    """A state of the contract's model as the table holds it: the hot part under the
    customer's id and its history records (scoring.plain_customer)."""
    customer = plain_models.from_model(state, kept_ids)
    records = {state.customer_id.encode(): codec.encode(partition, customer)}
    records |= {plain.history_key(state.customer_id, tag): value
                for tag, value in customer.take_writes().items() if value is not None}
    return records


def customer_partition(raw: bytes) -> int:
    return int(raw[: raw.index(b"|")])


def decode_customer(raw: bytes, history: plain.HistoryLoader | None = None
                    ) -> CustomerState:
    """A table value as the contract's model, with its history read through ``history``
    (the table's get)."""
    return plain_models.to_model(codec.decode(raw, history))




def erased_key(customer_id: str) -> bytes:
    """Key of an erased customer's marker: a digest, not the id."""
    return hashlib.sha256(customer_id.encode()).hexdigest().encode()
