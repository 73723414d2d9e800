"""Payroll example — user code, backend-neutral: book a monthly salary journal with the payslips attached.

One function, any ledger that supports `Capability.REGISTRATIONS_SUBMIT` (multiregnskab-s2s, multiregnskab,
runmyaccounts (`POST gl`), memory):

    ref = await submit_monthly_payroll(ledger, period=date(2026, 11, 30), payslips=[...], payslip_pdf=pdf_bytes,
                                       accounts=SWISS_PAYROLL_ACCOUNTS)  # or DANISH_PAYROLL_ACCOUNTS (the default)

The journal (positive = debit, negative = credit; it sums to zero):

    gross wages (expense)                       + gross
    employer pension contribution (expense)     + employer pension
    withheld income tax, A-skat (liability)     - A-skat
    labour-market contribution, AM-bidrag       - AM-bidrag
    pension payable (employee + employer)       - pensions
    net pay to the clearing account             - net pay

The payroll system computes the figures; this code only books them. Account numbers are the caller's (they
differ per chart of accounts):

    role                       DANISH_PAYROLL_ACCOUNTS (default)       SWISS_PAYROLL_ACCOUNTS (Run my Accounts)
    gross_wages                2210 Lønninger                          5000 Lohnaufwand
    employer_pension           2230 Pension, arbejdsgiver              5720 Berufliche Vorsorge
    income_tax_payable         8240 Skyldig A-skat                     2279 Kontokorrent Quellensteuer
    am_contribution_payable    8250 Skyldig AM-bidrag                  2270 Kontokorrent Sozialversicherungen
    pension_payable            8260 Skyldig pension                    2271 Kontokorrent Vorsorgeeinrichtung
    net_pay_clearing           8270 Skyldig nettoløn                   1091 Lohndurchlaufkonto

The Swiss numbers are those of the Run my Accounts sandbox chart (a common Swiss KMU chart); check them against
your tenant's chart (`ledger.adapter.list_charts()`).

The reference is ``payroll-YYYY-MM``. Where the backend can find a registration by reference
(`Capability.REGISTRATION_LOOKUP`: runmyaccounts, memory), submitting the same month again returns the booked entry
and different content is `ab.Conflict`; Multi-Regnskab cannot look one up, so a second submit books a second
entry: keep a sync journal (`ab.push`) to submit each month once.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from decimal import Decimal

import attrs

import accounting_bridge as ab

__all__ = [
    "DANISH_PAYROLL_ACCOUNTS",
    "SAMPLE_PAYSLIPS",
    "SWISS_PAYROLL_ACCOUNTS",
    "PayrollAccounts",
    "Payslip",
    "build_payroll_registration",
    "submit_monthly_payroll",
]

CENT = Decimal("0.01")


@attrs.frozen(kw_only=True)
class Payslip:
    """One employee's month, as the payroll system computed it (DKK)."""

    employee: str
    gross: Decimal
    employee_pension: Decimal  # withheld from the wage
    employer_pension: Decimal  # paid on top by the employer
    am_contribution: Decimal  # AM-bidrag, 8 % of (gross - employee pension)
    income_tax: Decimal  # A-skat withheld

    @property
    def net_pay(self) -> Decimal:
        return self.gross - self.employee_pension - self.am_contribution - self.income_tax


#: A sample month (two employees) for the README, the demo and tests.
SAMPLE_PAYSLIPS: tuple[Payslip, ...] = (
    Payslip(
        employee="Anna",
        gross=Decimal("40000.00"),
        employee_pension=Decimal("1600.00"),
        employer_pension=Decimal("3200.00"),
        am_contribution=Decimal("3072.00"),
        income_tax=Decimal("11221.36"),
    ),
    Payslip(
        employee="Bo",
        gross=Decimal("32500.00"),
        employee_pension=Decimal("0"),
        employer_pension=Decimal("0"),
        am_contribution=Decimal("2600.00"),
        income_tax=Decimal("9213.00"),
    ),
)


@attrs.frozen(kw_only=True)
class PayrollAccounts:
    gross_wages: str = "2210"  # Lønninger
    employer_pension: str = "2230"  # Pension, arbejdsgiver
    income_tax_payable: str = "8240"  # Skyldig A-skat
    am_contribution_payable: str = "8250"  # Skyldig AM-bidrag
    pension_payable: str = "8260"  # Skyldig pension
    net_pay_clearing: str = "8270"  # Skyldig nettoløn (clearing, paid out from the bank later)


#: A common Danish small-business chart (Multi-Regnskab checks accounts itself; its sandbox accepts any).
DANISH_PAYROLL_ACCOUNTS = PayrollAccounts()
#: The Run my Accounts sandbox chart (a common Swiss KMU chart).
SWISS_PAYROLL_ACCOUNTS = PayrollAccounts(
    gross_wages="5000",  # Lohnaufwand
    employer_pension="5720",  # Berufliche Vorsorge
    income_tax_payable="2279",  # Kontokorrent Quellensteuer
    am_contribution_payable="2270",  # Kontokorrent Sozialversicherungen
    pension_payable="2271",  # Kontokorrent Vorsorgeeinrichtung
    net_pay_clearing="1091",  # Lohndurchlaufkonto
)


def build_payroll_registration(
    *,
    period: _dt.date,
    payslips: Sequence[Payslip],
    payslip_pdf: bytes,
    accounts: PayrollAccounts = PayrollAccounts(),
) -> ab.Registration:
    """The neutral registration: one journal for the month, the payslips attached as one PDF."""

    def total(field: str) -> Decimal:
        return sum((Decimal(getattr(p, field)) for p in payslips), Decimal(0)).quantize(CENT)

    gross = total("gross")
    employer_pension = total("employer_pension")
    pensions = total("employee_pension") + employer_pension
    am = total("am_contribution")
    tax = total("income_tax")
    net = sum((p.net_pay for p in payslips), Decimal(0)).quantize(CENT)
    lines = [
        ab.PostingLine(account=accounts.gross_wages, amount=gross),
        ab.PostingLine(account=accounts.employer_pension, amount=employer_pension),
        ab.PostingLine(account=accounts.income_tax_payable, amount=-tax),
        ab.PostingLine(account=accounts.am_contribution_payable, amount=-am),
        ab.PostingLine(account=accounts.pension_payable, amount=-pensions),
        ab.PostingLine(account=accounts.net_pay_clearing, amount=-net),
    ]
    month = period.strftime("%Y-%m")
    return ab.Registration(
        date=period,
        description=f"Løn {month} ({len(payslips)} medarbejdere)",
        lines=[line for line in lines if line.amount != 0],
        attachments=[
            ab.Document(
                filename=f"loensedler-{month}.pdf",
                content=payslip_pdf,
                content_type="application/pdf",
                description=f"Lønsedler {month}",
                date=period,
            )
        ],
        reference=f"payroll-{month}",
    )


async def submit_monthly_payroll(
    ledger: ab.Ledger,
    *,
    period: _dt.date,
    payslips: Sequence[Payslip],
    payslip_pdf: bytes,
    accounts: PayrollAccounts = PayrollAccounts(),
) -> ab.RegistrationRef:
    """Submit the month's salary journal. An unknown outcome surfaces as `ab.WriteOutcomeUnknown` carrying
    ``payroll-YYYY-MM``: check the backend (or your sync journal) before submitting that month again."""
    registration = build_payroll_registration(
        period=period, payslips=payslips, payslip_pdf=payslip_pdf, accounts=accounts
    )
    return await ledger.registrations.submit(registration)
