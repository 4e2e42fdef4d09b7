"""Money as the kernel keeps it: integer minor units of an ISO 4217 currency.

A provider usually wants the amount as decimal text in major units ("25.00"); the
exponent depends on the currency (2 for USD, 0 for JPY, 3 for KWD). The table below is the
kernel's own (keel_domain::currency), copied: a test in the kernel checks that they
are the same, code by code. No floats anywhere: to_major and from_major work on
digits.

>>> to_major(new(2500, "USD"))
'25.00'
>>> from_major("12.5", "USD").minor
1250
"""

from wit_world.imports import types

from . import errors

#: The minor-unit exponent of every active ISO 4217 code the kernel knows.
EXPONENTS: dict[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2,
    "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2,
    "BOB": 2, "BOV": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2,
    "CAD": 2, "CDF": 2, "CHE": 2, "CHF": 2, "CHW": 2, "CLF": 4, "CLP": 0, "CNY": 2,
    "COP": 2, "COU": 2, "CRC": 2, "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0, "DKK": 2,
    "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2, "ETB": 2, "EUR": 2, "FJD": 2, "FKP": 2,
    "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2, "GNF": 0, "GTQ": 2, "GYD": 2,
    "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "IQD": 3,
    "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2, "KHR": 2,
    "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2, "LBP": 2,
    "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3, "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2,
    "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2, "MVR": 2, "MWK": 2, "MXN": 2,
    "MXV": 2, "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2, "NPR": 2,
    "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2,
    "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2, "RWF": 0, "SAR": 2, "SBD": 2,
    "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2, "SOS": 2, "SRD": 2,
    "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2, "THB": 2, "TJS": 2, "TMT": 2,
    "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2, "UAH": 2, "UGX": 0,
    "USD": 2, "USN": 2, "UYI": 0, "UYU": 2, "UYW": 4, "UZS": 2, "VED": 2, "VES": 2,
    "VND": 0, "VUV": 0, "WST": 2, "XAD": 2, "XAF": 0, "XCD": 2, "XCG": 2, "XOF": 0,
    "XPF": 0, "YER": 2, "ZAR": 2, "ZMW": 2, "ZWG": 2,
}


def exponent(code: str) -> int | None:
    """The exponent of code (upper-case ISO 4217: "USD"), if the kernel knows it."""
    return EXPONENTS.get(code)


def new(minor: int, currency: str) -> types.Money:
    """A Money record."""
    return types.Money(minor=minor, currency=currency)


def _known(code: str) -> int:
    exp = EXPONENTS.get(code)
    if exp is None:
        raise errors.invalid_input(f"{code!r} is not a currency the kernel knows")
    return exp


def to_major(money: types.Money) -> str:
    """Decimal text in major units at the currency's exponent: "25.00" for 2500 USD,
    "1050" for 1050 JPY, "-0.005" for -5 KWD. An unknown currency raises
    invalid-input."""
    exp = _known(money.currency)
    sign = "-" if money.minor < 0 else ""
    digits = str(abs(money.minor))
    if exp == 0:
        return sign + digits
    digits = digits.rjust(exp + 1, "0")
    return f"{sign}{digits[:-exp]}.{digits[-exp:]}"


def from_major(text: str, currency: str) -> types.Money:
    """The Money that decimal text in major units stands for: "12.5" USD is 1250
    minor units. Only plain digits with an optional - and . are accepted; more
    decimal places than the currency has, or an unknown currency, raise invalid-input
    (never rounded)."""
    exp = _known(currency)
    negative = text.startswith("-")
    unsigned = text[1:] if negative else text
    whole, dot, fraction = unsigned.partition(".")

    def digits(s: str) -> bool:
        return s != "" and all("0" <= c <= "9" for c in s)

    if not digits(whole) or (dot and not digits(fraction)):
        raise errors.invalid_input(f"the amount {text!r} is not a decimal number")
    if len(fraction) > exp:
        raise errors.invalid_input(f"the amount {text!r} has more decimal places than {currency}")
    minor = int(whole + fraction.ljust(exp, "0"))
    if minor >= 2**63:
        raise errors.invalid_input(f"the amount {text!r} is too large")
    return new(-minor if negative else minor, currency)
