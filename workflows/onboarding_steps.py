"""The later steps of merchant onboarding (e-contract, security deposit), kept apart from the flow's
decisions in workflows/onboarding.py; deterministic workflow code like it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.onboarding import VerificationActivities
    from domain.merchants import (
        Contract,
        ContractRequest,
        Deposit,
        MerchantStatus,
        OnboardingInput,
        OnboardingNotification,
        Terms,
    )
    from domain.numbers import deposit_payment_no
    from domain.payments import PaymentEvent, PaymentEventKind, PaymentInput, PaymentStatus
    from workflows import policies, stages
    from workflows.awaiting import PartyWait, Woke
    from workflows.calls import party_step
    from workflows.ids import payment_workflow_id
    from workflows.payment import PaymentWorkflow

# Each deposit attempt is a child payment (a dozen history events and a payment timeout): a merchant who
# never pays would otherwise grow the flow's history without end. After this many, onboarding expires.
MAX_DEPOSIT_ATTEMPTS = 10
DEPOSIT_CAP_PATCH = "onboarding-deposit-attempts-cap"


class ContractAndDeposit:
    # Provided by MerchantOnboardingWorkflow.
    _inp: OnboardingInput
    _terms: Terms
    _contract_inbox: list[OnboardingNotification]
    _payment_no: str | None
    _deposit_ready: PaymentEvent | None
    _payment: PaymentEvent | None

    _move: Callable[..., Awaitable[None]]  # (to, event, cause, **fields): record a stage change
    _notify: Callable[[str], str]  # (party) -> the callback URL that party reports to

    async def _sign_contract(self) -> bool:
        inp = self._inp
        stages.enter("CONTRACTING", "preparing the e-contract")
        req = ContractRequest(merchant_id=inp.merchant_id, round=1, notify_url=self._notify("esign"))
        contract = await party_step(VerificationActivities.create_contract, req)
        await self._move(
            None, "contract-created", f"contract {contract.contract_id} sent for signing", contract=contract
        )
        deadline = workflow.now() + timedelta(seconds=inp.terms.contract_sign_window_seconds)
        stages.enter(
            "CONTRACTING",
            f"waiting for the merchant to sign contract {contract.contract_id} until {deadline:%H:%M:%S} UTC",
        )
        signed: Contract | None = None
        waiting = PartyWait(lambda: bool(self._contract_inbox), lambda _: inp.terms.kyc_poll_seconds, deadline=deadline)
        while signed is None:
            woke = await waiting.next()
            if woke is Woke.OVER:
                break
            if woke is Woke.HEARD:
                n = self._contract_inbox.pop(0)
                if n.event_type == "contract.signed" and n.request_no == req.request_no:
                    signed = contract.model_copy(update={"status": "SIGNED"})
                continue
            signed = await self._signed_at_provider(req, retry=policies.CHANNEL_QUERY)
        # At the deadline the provider has the last word: a signature in the last moment counts.
        signed = signed or await self._signed_at_provider(req, retry=policies.PARTY)
        if signed is None:
            return False
        await self._move(
            None, "contract-signed", "contract signed; ledger accounts opened", contract=signed, open_accounts=True
        )
        return True

    async def _signed_at_provider(self, req: ContractRequest, retry: RetryPolicy) -> Contract | None:
        try:
            found = await workflow.execute_activity_method(
                VerificationActivities.query_contract,
                req,
                start_to_close_timeout=policies.CHANNEL_TIMEOUT,
                retry_policy=retry,
            )
        except ActivityError:
            return None
        return found if found is not None and found.status == "SIGNED" else None

    async def _collect_deposit(self) -> bool:
        """Open a deposit payment (a child payment flow) and wait until it is paid; a new one when it expires,
        at most MAX_DEPOSIT_ATTEMPTS times (False: never paid)."""
        inp, terms = self._inp, self._terms
        attempt = 0
        while True:
            attempt += 1
            self._payment_no = deposit_payment_no(inp.merchant_id, attempt)
            self._deposit_ready = self._payment = None
            stages.enter("AWAITING_DEPOSIT", f"opening deposit payment {self._payment_no}")
            payment = await workflow.start_child_workflow(
                PaymentWorkflow.run,
                PaymentInput(
                    payment_no=self._payment_no,
                    order_no=f"deposit-{inp.merchant_id}",
                    merchant_id=inp.merchant_id,
                    amount_minor=terms.deposit_minor,
                    currency=terms.currency,
                    description=f"security deposit of merchant {inp.merchant_id}",
                    preferred_channel=None,
                    channel_weights=inp.terms.channel_weights,
                    timeout_seconds=inp.terms.payment_timeout_seconds,
                    poll_initial_seconds=inp.terms.payment_poll_initial_seconds,
                    poll_max_seconds=inp.terms.payment_poll_max_seconds,
                    notify_url=inp.terms.notify_url,
                    parent_workflow_id=workflow.info().workflow_id,
                    refund_terms=inp.terms.refund,
                    purpose="deposit",
                ),
                id=payment_workflow_id(self._payment_no),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
            await workflow.wait_condition(lambda: self._deposit_ready is not None or self._payment is not None)
            ready = self._deposit_ready
            if ready is not None and ready.pay_url:
                deposit = Deposit(payment_no=self._payment_no, amount_minor=terms.deposit_minor, pay_url=ready.pay_url)
                await self._move(
                    MerchantStatus.AWAITING_DEPOSIT,
                    f"deposit-{attempt}-opened",
                    f"deposit payment {self._payment_no}",
                    deposit=deposit,
                )
                stages.enter(
                    "AWAITING_DEPOSIT",
                    f"waiting for the security deposit of {terms.deposit_minor} {terms.currency} through "
                    f"{self._payment_no} (deadline {ready.expires_at:%H:%M:%S} UTC)",
                )
                await workflow.wait_condition(lambda: self._payment is not None)
            event = self._payment
            if event is not None and event.kind is PaymentEventKind.SUCCEEDED:
                return True
            if (await payment).status is PaymentStatus.SUCCEEDED:  # paid while the payment was closing
                return True
            stages.say(f"deposit payment {self._payment_no} ended unpaid ({event.reason if event else '?'})")
            # Asked only at the cap: recorded histories replay as they ran; a running flow already past the
            # cap stops at its next unpaid attempt.
            if attempt >= MAX_DEPOSIT_ATTEMPTS and workflow.patched(DEPOSIT_CAP_PATCH):
                return False
            if event is not None and event.kind is PaymentEventKind.FAILED:
                await workflow.sleep(timedelta(seconds=inp.terms.payment_poll_max_seconds))
