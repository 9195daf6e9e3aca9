# -*- coding: utf-8 -*-
# Copyright: fjcloud.mail contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE to the collection: not a public API; may change without notice.

Keystone logins that cannot lock the account, across every process of the user.

Five failed logins within 15 minutes lock a K5 account for 15 minutes. A play
on many hosts runs one module process per host at once, and a password can
go wrong at any time (rotated in the portal, a vault typo). For each account
(auth URL, user, domain) the guard keeps a record in the private state
directory and holds a lock on a separate lock file during every login:

* one login of the account at a time, whatever happened before;
* after a rejection, the same credentials (user, domain, project scope and
  password) are not tried again for the window; corrected ones are tried at once;
* never more than MAX_FAILED logins of the account that failed (or whose
  answer was lost) within the window, whatever the passwords;
* the attempt is recorded *before* the password goes out: a login whose
  process died with it counts as rejected, and a record that cannot be
  written stops the login before any request.

The record names credentials only by an HMAC-SHA256 of them, keyed with a
random secret of the state directory: no password, no plain hash of one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import contextlib
import hashlib
import hmac
import json
import math
import os
import time

from ansible_collections.fjcloud.mail.plugins.module_utils.errors import K5MailError, LOST_REPLY, SERVER_ERROR
from ansible_collections.fjcloud.mail.plugins.module_utils.state_dir import StateDir, normalised_url

ACTION = 'Keystone authentication'
LOCKOUT_WINDOW = 900  # five failures within 15 minutes lock the account for 15 minutes
MAX_FAILED = 3        # of those five, leave two for the portal and other controllers
LOCK_TIMEOUT = 120
KEY_LOCK_TIMEOUT = 10  # creating the key takes milliseconds
RECORD_LIMIT = 16384
MAX_ENTRIES = 64       # far more than a guarded record ever holds
KEY_NAME = 'login-key'
RECORD_VERSION = 1

ACCEPTED = 'accepted'
REJECTED = 'rejected'        # Keystone answered 401
INTERRUPTED = 'interrupted'  # the process died with the login in flight: counted as rejected
UNKNOWN = 'unknown'          # the password may have been checked, the answer was lost (5xx, cut short)
FAILURES = (REJECTED, INTERRUPTED, UNKNOWN)
BLOCKING = (REJECTED, INTERRUPTED)  # these block the same credentials for the window


class LoginOutcome:
    """What the caller tells the guard about its one login."""

    def __init__(self):
        self.result = None

    def rejected(self):
        """Keystone answered 401 to the credentials."""
        self.result = REJECTED

    def accepted(self):
        """Keystone answered 201."""
        self.result = ACCEPTED


class Record:
    """The failed logins of one account within the window, and the login in flight."""

    def __init__(self, failures=None, in_flight=None, accepted_at=None):
        self.failures = failures or []  # [{'at': time, 'outcome': FAILURES, 'credentials': fingerprint or None}]
        self.in_flight = in_flight      # {'at': time, 'credentials': fingerprint, 'pid': pid} or None
        self.accepted_at = accepted_at

    @classmethod
    def parse(cls, data):
        """The record in ``data``; ValueError saying what is wrong when it is not a whole, sound record."""
        try:
            doc = json.loads(data.decode('utf-8'), parse_constant=_no_constant, parse_float=_finite)
        except json.JSONDecodeError as exc:
            raise ValueError('not JSON (%s at character %d), maybe cut short' % (exc.msg, exc.pos))
        except UnicodeDecodeError:
            raise ValueError('not text')
        if not isinstance(doc, dict) or doc.get('version') != RECORD_VERSION:
            raise ValueError('not a version %d login record' % RECORD_VERSION)
        failures = doc.get('failures')
        if not isinstance(failures, list) or len(failures) > MAX_ENTRIES:
            raise ValueError('"failures" is not a list of at most %d entries' % MAX_ENTRIES)
        record = cls([_entry(item, FAILURES, 'a failure') for item in failures],
                     accepted_at=_time(doc.get('accepted_at'), 'accepted_at', optional=True))
        if doc.get('in_flight') is not None:
            record.in_flight = _entry(doc['in_flight'], None, '"in_flight"')
        return record

    def dump(self):
        return json.dumps(dict(version=RECORD_VERSION, failures=self.failures, in_flight=self.in_flight,
                               accepted_at=self.accepted_at), sort_keys=True).encode('ascii')

    def normalise(self, now, window, holding_lock):
        """Clamp future times (a clock set back) to now, drop what the window left behind.

        Holding the lock, a login still marked in flight is one whose process died:
        its outcome is unknown, so it counts as rejected.
        """
        if holding_lock and self.in_flight is not None:
            self.failures.append(dict(at=self.in_flight['at'], credentials=self.in_flight['credentials'],
                                      outcome=INTERRUPTED))
            self.in_flight = None
        for entry in self.failures:
            entry['at'] = min(entry['at'], now)
        if self.accepted_at is not None:
            self.accepted_at = min(self.accepted_at, now)
        self.failures = sorted((entry for entry in self.failures if now - entry['at'] < window),
                               key=lambda entry: entry['at'])

    @classmethod
    def used_up(cls, now):
        """A record for a lost one: as many failures as the window allows, of unknown credentials, now."""
        return cls([dict(at=now, outcome=UNKNOWN, credentials=None) for _index in range(MAX_FAILED)])


class LoginGuard:
    """Guards the logins of one (auth_url, username, user_domain_name) on this host.

    ``password`` and ``project_scope`` are the rest of the credentials; they are
    kept only as a keyed fingerprint. ``clock`` is the wall clock of the recorded
    times (shared by processes), ``monotonic`` times the wait for the lock.
    """

    def __init__(self, auth_url, username, user_domain_name, password=None, project_scope='',
                 window=LOCKOUT_WINDOW, state_dir=None, clock=None, sleep=None, lock_timeout=LOCK_TIMEOUT,
                 monotonic=None):
        self.username = username
        self.user_domain_name = user_domain_name
        self.project_scope = project_scope
        self._password = password
        self.window = window
        self.clock = clock or time.time
        self.monotonic = monotonic or time.monotonic
        self.sleep = sleep or time.sleep
        self.lock_timeout = lock_timeout
        self.state = StateDir(ACTION, state_dir)
        self.account_url, account = account_key(auth_url, username, user_domain_name)
        self.name = 'login-%s.json' % account
        self.lock_name = 'login-%s.lock' % account
        self.path = os.path.join(self.state.path, self.name)
        self._waiting_refusal = None

    @contextlib.contextmanager
    def attempt(self):
        """Allow one login, or raise K5MailError without any request; record the outcome the caller reports."""
        with _not_tried():
            credentials = self._fingerprint()
            fd = self.state.open_file(self.lock_name)
        try:
            with _not_tried():
                record = self._before_login(fd, credentials)
            outcome = LoginOutcome()
            try:
                yield outcome
            except BaseException as exc:
                if outcome.result is None and _may_have_been_checked(exc):
                    outcome.result = UNKNOWN
                # The caller's error comes first. Should the record not be written, the login
                # stays marked in flight and the next one counts it as rejected.
                self._settle(record, credentials, outcome, raise_errors=False)
                raise
            self._settle(record, credentials, outcome, raise_errors=True)
        finally:
            os.close(fd)  # releases the lock

    def _before_login(self, fd, credentials):
        """Lock, read the record, refuse or record the attempt; return the record."""
        self._lock(fd, credentials)
        record, unchanged = self._load_locked()
        now = self.clock()
        refusal = self._refusal(record, credentials, now)
        if refusal is not None:
            if not unchanged:
                self._save(record)  # clamped times and expiries last, so that they expire
            raise refusal
        # Recorded before the password goes out: should this process die, the next one counts it.
        record.in_flight = dict(at=now, credentials=credentials, pid=os.getpid())
        self._save(record, before_request=True)
        return record

    # ------------------------------------------------------------ the lock

    def _lock(self, fd, credentials):
        """Take the account's lock; while waiting, refuse as soon as the record says this login may not try."""
        self._waiting_refusal = None
        locked = self.state.lock(fd, self.lock_name, self.lock_timeout, sleep=self.sleep, clock=self.monotonic,
                                 stop_when=lambda: self._refused_while_waiting(credentials))
        if locked:
            return
        if self._waiting_refusal is not None:
            raise self._waiting_refusal
        raise K5MailError(
            ACTION,
            'other logins of user %s of contract %s on this host held %s for more than %d seconds '
            '(logins of one account run one at a time)' % (
                self.username, self.user_domain_name, os.path.join(self.state.path, self.lock_name),
                self.lock_timeout),
            hint='Run again once the other run has finished; on many hosts, log in once with fjcloud.mail.auth '
                 '(run_once) and give its token to the other tasks')

    def _refused_while_waiting(self, credentials):
        """True when the record, read without the lock, refuses this login (the refusal is kept)."""
        try:
            data = self.state.read_file(self.name, RECORD_LIMIT)
            record = Record.parse(data) if data else Record()
        except (K5MailError, ValueError):
            return False  # whoever holds the lock repairs it, or this process once it holds the lock
        now = self.clock()
        record.normalise(now, self.window, holding_lock=False)  # the login in flight is alive
        self._waiting_refusal = self._refusal(record, credentials, now)
        return self._waiting_refusal is not None

    # ------------------------------------------------------------ the record

    def _load_locked(self):
        """The record, normalised, and whether that left it as it was on disk.

        A corrupt record is replaced by one that uses the window up.
        """
        data = self.state.read_file(self.name, RECORD_LIMIT)  # an unreadable record is a K5MailError
        now = self.clock()
        if data is None:
            return Record(), False
        try:
            record = Record.parse(data)
        except ValueError as problem:
            record = Record.used_up(now)
            self._save(record)
            raise K5MailError(
                ACTION,
                'the login record %s could not be read (%s); it is replaced by one that counts the '
                'lockout window as used up, because the failed logins it held are unknown' % (self.path, problem),
                hint='Wait until %s; the next login of user %s of contract %s is tried then' % (
                    _utc(now + self.window), self.username, self.user_domain_name))
        record.normalise(now, self.window, holding_lock=True)
        return record, record.dump() == data

    def _save(self, record, before_request=False):
        try:
            self.state.replace_file(self.name, record.dump())
        except K5MailError as exc:
            if before_request:
                exc.reason = 'the attempt could not be recorded before the login: %s' % exc.reason
            raise

    def _settle(self, record, credentials, outcome, raise_errors):
        """Replace the login in flight by its outcome."""
        now = self.clock()
        record.in_flight = None
        if outcome.result == ACCEPTED:
            record.accepted_at = now  # the failures stay: the service may not reset its count
        elif outcome.result is not None:
            record.failures.append(dict(at=now, outcome=outcome.result, credentials=credentials))
        try:
            self._save(record)
        except K5MailError as exc:
            if not raise_errors:
                return
            exc.reason = ('Keystone answered, but the outcome could not be recorded: %s; the next login with '
                          'these credentials counts this one as rejected until %s'
                          % (exc.reason, _utc(now + self.window)))
            raise

    # ------------------------------------------------------------ the rules

    def _refusal(self, record, credentials, now):
        """The K5MailError that refuses this login, or None when it may try."""
        blocked = [entry for entry in record.failures
                   if entry['outcome'] in BLOCKING and entry['credentials'] == credentials]
        if len(record.failures) >= MAX_FAILED:
            until = record.failures[-MAX_FAILED]['at'] + self.window
            if blocked:
                until = max(until, blocked[-1]['at'] + self.window)
            return self._too_many(record, until)
        if blocked:
            return self._same_credentials(blocked[-1], now)
        return None

    def _same_credentials(self, entry, now):
        if entry['outcome'] == REJECTED:
            what = 'Keystone rejected these credentials (%s) %d seconds ago' % (
                self._credentials_text(), int(now - entry['at']))
        else:
            what = ('a login with these credentials (%s) ended %d seconds ago without a recorded answer (its '
                    'process was killed, or the record could not be written), so it counts as rejected' % (
                        self._credentials_text(), int(now - entry['at'])))
        return K5MailError(
            ACTION,
            '%s on this host; the same credentials are not tried again for %d minutes, because failed '
            'logins lock the account (five within 15 minutes)' % (what, self.window // 60),
            hint='Correct the credentials: a different password or project is tried at once; or wait until %s' % (
                _utc(entry['at'] + self.window)))

    def _too_many(self, record, until):
        return K5MailError(
            ACTION,
            '%d logins of user %s of contract %s failed or got no answer within the last %d minutes on '
            'this host (the last at %s); the service locks the account after five, so no login of the account is '
            'tried from this host until %s' % (
                len(record.failures), self.username, self.user_domain_name, self.window // 60,
                _utc(record.failures[-1]['at']), _utc(until)),
            hint='Check the password, the user, the contract and the project meanwhile; wait until %s' % _utc(until))

    def _credentials_text(self):
        scope = ', %s' % self.project_scope if self.project_scope else ''
        return 'user %s of contract %s%s, this password' % (self.username, self.user_domain_name, scope)

    # ------------------------------------------------------------ the key

    def _fingerprint(self):
        """HMAC-SHA256 of the credentials with the secret key of the state directory."""
        text = json.dumps([self.account_url, self.username, self.user_domain_name, self.project_scope,
                           self._password])
        return hmac.new(self._key(), text.encode('utf-8'), hashlib.sha256).hexdigest()

    def _key(self):
        data = self.state.read_file(KEY_NAME, 1024)
        if data is None:
            data = self._create_key()
        text = data.decode('ascii', 'replace').strip()
        try:
            if len(text) != 64:
                raise ValueError(text)
            return binascii.unhexlify(text)
        except (ValueError, TypeError):
            path = os.path.join(self.state.path, KEY_NAME)
            raise K5MailError(
                ACTION, '%s is not a login key of fjcloud.mail (64 hexadecimal digits)' % path,
                hint='Remove it, and a new key is made; the limit of %d failed logins per account and %d minutes '
                     'holds meanwhile' % (MAX_FAILED, self.window // 60))

    def _create_key(self):
        """Create the key once: under a lock, so that concurrent first logins agree on it."""
        lock_name = KEY_NAME + '.lock'
        fd = self.state.open_file(lock_name)
        try:
            if not self.state.lock(fd, lock_name, KEY_LOCK_TIMEOUT, sleep=self.sleep, clock=self.monotonic):
                raise K5MailError(ACTION, 'another process held %s for more than %d seconds' % (
                    os.path.join(self.state.path, lock_name), KEY_LOCK_TIMEOUT), hint='Run again')
            data = self.state.read_file(KEY_NAME, 1024)
            if data is None:
                data = binascii.hexlify(os.urandom(32)) + b'\n'
                self.state.replace_file(KEY_NAME, data)
            return data
        finally:
            os.close(fd)


@contextlib.contextmanager
def _not_tried():
    """Every error before the login says that the password did not go out."""
    try:
        yield
    except K5MailError as exc:
        exc.reason = 'not tried: %s' % exc.reason
        raise


def project_scope(project_id=None, project_name=None, project_domain_name=None):
    """The project part of the credentials, as the messages name it."""
    if project_id:
        return 'project id %s' % project_id
    return 'project %s of domain %s' % (project_name, project_domain_name)


def account_key(auth_url, username, user_domain_name):
    """The normalised Keystone URL, and a file-name-safe key of the account the same for every spelling of it."""
    url = normalised_url(auth_url, keep_path=True)
    if url.endswith('/v3'):
        url = url[:-len('/v3')]
    text = '\n'.join((url, username, user_domain_name))
    return url, hashlib.sha256(text.encode('utf-8')).hexdigest()[:32]


def _may_have_been_checked(exc):
    """Whether a login that raised ``exc`` may have reached Keystone's password check."""
    if not isinstance(exc, K5MailError):
        return True  # interrupted, or a failure we cannot judge: count it
    # A 5xx or a lost reply may follow a check. A request not sent or not processed, another
    # answer (4xx, a redirect) and the failures before any (TLS, bad input) are no verdict.
    return exc.failure in (LOST_REPLY, SERVER_ERROR)


def _entry(item, outcomes, what):
    if not isinstance(item, dict):
        raise ValueError('%s is not an object' % what)
    credentials = item.get('credentials')
    if credentials is not None and not (isinstance(credentials, str) and len(credentials) == 64
                                        and all(char in '0123456789abcdef' for char in credentials)):
        raise ValueError('%s has no valid credentials fingerprint' % what)
    entry = dict(at=_time(item.get('at'), '%s time' % what), credentials=credentials)
    if outcomes is not None:
        if item.get('outcome') not in outcomes:
            raise ValueError('%s has an unknown outcome' % what)
        entry['outcome'] = item['outcome']
    elif isinstance(item.get('pid'), int):
        entry['pid'] = item['pid']
    return entry


def _time(value, what, optional=False):
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError('%s is not a number' % what)
    try:
        value = float(value)
    except OverflowError:
        raise ValueError('%s is out of range' % what)
    if not math.isfinite(value):
        raise ValueError('%s is not finite' % what)
    return value


def _finite(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError('a number out of range')
    return value


def _no_constant(name):
    raise ValueError('%s is not a time' % name)


def _utc(timestamp):
    """HH:MM UTC, rounded up to the minute: from then on the login is tried."""
    return time.strftime('%H:%M UTC', time.gmtime(math.ceil(timestamp / 60.0) * 60))
