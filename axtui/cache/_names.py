"""Common proper names that users often type in lower case.

The guards treat a capitalised word in mid-sentence as a name already; this
list catches the names people type without capitals ("capital of france")
and at the start of a sentence ("Python or Java?"). Multi-word names are
written with spaces.
"""

from __future__ import annotations

__all__ = ["NAMES"]

_COUNTRIES = """
afghanistan albania algeria andorra angola argentina armenia australia austria azerbaijan bahamas bahrain bangladesh
barbados belarus belgium belize benin bhutan bolivia bosnia botswana brazil brunei bulgaria burkina burundi cambodia
cameroon canada chad chile china colombia comoros congo croatia cuba cyprus czechia czech denmark djibouti dominica
ecuador egypt england eritrea estonia eswatini ethiopia fiji finland france gabon gambia georgia germany ghana greece
grenada guatemala guinea guyana haiti honduras hungary iceland india indonesia iran iraq ireland israel italy jamaica
japan jordan kazakhstan kenya kiribati korea kosovo kuwait kyrgyzstan laos latvia lebanon lesotho liberia libya
liechtenstein lithuania luxembourg madagascar malawi malaysia maldives mali malta mauritania mauritius mexico
micronesia moldova monaco mongolia montenegro morocco mozambique myanmar namibia nauru nepal netherlands holland
nicaragua niger nigeria norway oman pakistan palau palestine panama paraguay peru philippines poland portugal qatar
romania russia rwanda samoa senegal serbia seychelles singapore slovakia slovenia somalia spain sudan suriname sweden
switzerland syria taiwan tajikistan tanzania thailand togo tonga tunisia turkey turkmenistan tuvalu uganda ukraine
uruguay uzbekistan vanuatu vatican venezuela vietnam yemen zambia zimbabwe scotland wales britain uk usa us america
europe asia africa antarctica oceania
"""

_MULTI = """
united states|united kingdom|new zealand|south africa|south korea|north korea|saudi arabia|sri lanka|costa rica|
el salvador|new york|los angeles|san francisco|hong kong|rio de janeiro|buenos aires|mexico city|new delhi|
cape town|tel aviv|las vegas|world war|north america|south america|middle east
"""

_CITIES = """
london paris berlin madrid rome lisbon dublin amsterdam brussels vienna prague warsaw budapest athens stockholm oslo
copenhagen helsinki zurich geneva munich hamburg milan naples barcelona seville moscow kyiv istanbul cairo lagos
nairobi johannesburg tokyo osaka kyoto beijing shanghai shenzhen seoul bangkok singapore jakarta manila delhi mumbai
bangalore karachi dubai tehran baghdad riyadh jerusalem sydney melbourne brisbane perth auckland toronto montreal
vancouver ottawa chicago boston seattle houston dallas austin denver miami atlanta philadelphia washington detroit
lima bogota santiago caracas havana edinburgh manchester liverpool birmingham glasgow lyon marseille nice florence
venice
"""

_PEOPLES = """
english french german spanish italian portuguese dutch russian chinese mandarin cantonese japanese korean arabic hindi
urdu bengali turkish greek polish swedish norwegian danish finnish hebrew persian thai vietnamese indonesian swahili
latin irish scottish welsh american british canadian australian mexican brazilian indian european african asian
ukrainian czech hungarian romanian
"""

_TECH = """
python java javascript typescript rust go golang ruby php perl swift kotlin scala haskell erlang elixir clojure lua
julia matlab fortran cobol pascal dart zig nim ocaml fsharp csharp cpp sql nosql bash powershell zsh fish html css
sass react vue angular svelte django flask fastapi rails laravel spring node nodejs deno bun npm pip conda poetry
numpy pandas scipy pytorch tensorflow keras sklearn docker kubernetes podman terraform ansible linux windows macos
ubuntu debian fedora centos arch android ios git github gitlab postgres postgresql mysql sqlite mongodb redis kafka
elasticsearch nginx apache aws azure gcp excel word powerpoint chrome firefox safari edge vim emacs vscode tcp udp
http https ssh ftp dns json yaml xml csv toml graphql grpc rest oauth jwt
"""

_ORGS = """
google microsoft apple amazon meta facebook netflix tesla toyota honda ford bmw mercedes volkswagen samsung sony
nvidia intel amd ibm oracle openai anthropic twitter uber airbnb spotify adobe salesforce paypal visa mastercard
walmart nike adidas cocacola pepsi mcdonalds starbucks boeing airbus nasa unesco nato who unicef
"""

_TIME = """
january february march april may june july august september october november december monday tuesday wednesday
thursday friday saturday sunday
"""

_SKY = "mercury venus mars jupiter saturn uranus neptune pluto"

# Names that are also everyday words ("may I", "go home", "take a rest") would
# block paraphrases for no gain; they are left to the capitalisation rule.
_AMBIGUOUS = frozenset(
    "us may go who word edge rest fish arch bun node spring nice swift excel chrome safari visa apache".split()  # noqa: SIM905
)

NAMES: frozenset[str] = (
    frozenset((_COUNTRIES + _CITIES + _PEOPLES + _TECH + _ORGS + _TIME + _SKY).split()) - _AMBIGUOUS
) | frozenset(m.strip() for m in _MULTI.replace("\n", "").split("|") if m.strip())
