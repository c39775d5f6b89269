"""Device warnings: what is worth an operator's look on a device that still goes on.

Everything a device sends is untrusted. The checks here read info.json and
settings.json only as jobs.device.documents cleaned them (types, ranges and lengths
checked), and every text they quote from the device is quoted and cut
(jobs.log.quoted), so a warning is safe on a log line and on a page.

A warning is a {kind, text} kept in the device's state file and shown on the
dashboard: a battery to charge, a firmware the event did not approve, a
setting to change on the device. It never stops the device: its tracks are
fetched all the same. It is not an error (a device that answers wrongly
fails, jobs.device.DeviceError) and not a track's problem (that is the
track's status in the ledger). A new device check goes here: a function of
(info or settings, checks) returning its warnings, called by `found_in`, and
its kind in KINDS.
"""

from typing import NamedTuple

from jobs.log import quoted

# Every setting the server can compare (the keys of checks.settings and
# checks.required_settings), as settings.json names them, but led_flash: that
# one is read from settings.json's custom_led.flash.
KNOWN_SETTINGS = ("gnss_rate", "one_log_per_day", "timezone", "led_flash", "speed_unit", "distance_unit")
LED_FLASH = "led_flash"


class Kind(NamedTuple):
    """One kind of warning: who gives it, what it means, and how the dashboard shows it."""
    given_by: str
    means: str
    title: str = None           # its own section on the warnings page; None: under OTHER_TITLE
    on_info_line: bool = False  # shown as ⚠ beside its value on the device's tile, not in its list of warnings
    kept: bool = False          # an inspection keeps it; else the inspection's own findings replace it


KINDS = {
    "battery": Kind("inspect", "battery level (info.json) below checks.battery_min_percent",
                    "Battery", on_info_line=True),
    "storage": Kind("inspect", "storage used (info.json) above checks.storage_max_percent",
                    "Storage", on_info_line=True),
    "firmware": Kind("inspect", "firmware (info.json) not in checks.approved_firmwares, when the event lists any",
                     "Firmware", on_info_line=True),
    "settings": Kind("inspect", "a setting (settings.json) other than checks.settings says, or not sent when "
                                "checks.required_settings names it", "Settings"),
    "address": Kind("detect", "the device answers from another address than earlier today (jobs.spool.state)",
                    kept=True),
    "rename": Kind("assign", "a track not renamed after the roster: a file is in the way", kept=True),
    "identity": Kind("download", "a track kept aside in unassigned/: its frames do not show it is this "
                                 "device's (jobs.track.fetch)"),
    # Dropped by an inspection: the download that follows judges the space again.
    "disk": Kind("download", "tracks wait for free space on the tracks disk (checks.min_free_gb)"),
}
OTHER_TITLE = "Other device warnings"
# The warnings page's sections in order: the kinds with a title, then every other kind together.
SECTIONS = {**{kind: k.title for kind, k in KINDS.items() if k.title}, "other": OTHER_TITLE}
KEPT_BY_INSPECTION = tuple(kind for kind, k in KINDS.items() if k.kept)
ON_INFO_LINE = tuple(kind for kind, k in KINDS.items() if k.on_info_line)


def warning(kind, text):
    return {"kind": kind, "text": text}


def found_in(info, settings, checks):
    """Every warning about a device's info.json and settings.json (as jobs.device.documents cleaned them),
    against the event's `checks` (cfg.checks): firmware, storage, battery, then settings."""
    return [*firmware(info, checks), *storage(info, checks), *battery(info, checks),
            *settings_differing(settings, checks)]


def firmware(info, checks):
    if info["generation"] == "new":
        name, shown = info["firmware_name"], quoted(info["firmware_name"])
    else:  # old firmware has a code only; the approved list holds it as a string
        name = shown = str(info["firmware_code"])
    # An empty list: the event approves no particular firmware, so none is checked.
    if checks.approved_firmwares and name not in checks.approved_firmwares:
        return [warning("firmware", f"firmware {shown} is not approved")]
    return []


def storage_full(level, checks):
    return level > checks.storage_max_percent


def storage(info, checks):
    if storage_full(info["storage"], checks):
        return [warning("storage", f"storage {info['storage']} % used (above {checks.storage_max_percent} %)")]
    return []


def battery_low(level, checks):
    return level < checks.battery_min_percent


def battery(info, checks):
    if battery_low(info["battery"], checks):
        return [warning("battery", f"battery {info['battery']} % (below {checks.battery_min_percent} %)")]
    return []


def settings_differing(settings, checks):
    """A warning per expected setting the device sets otherwise, or does not send though required.

    A setting not sent is not compared unless required: real devices send no
    custom_led at all, and a warning about it would be about the firmware."""
    found = []
    for key, wanted in checks.settings.items():
        if key not in settings:
            if key in checks.required_settings:
                found.append(warning("settings", f"setting {key} is not sent, expected {quoted(wanted)}"))
        elif settings[key] != wanted:
            found.append(warning("settings", f"setting {key} is {quoted(settings[key])}, expected {quoted(wanted)}"))
    return found
