/* Citizen Data Vault wallet: passkey forms, the way back to a service, print buttons.
 * Loaded with `defer` under a strict CSP (script-src 'self'): no inline code,
 * no eval, no dependencies. Every page works without it except passkeys. */
(function () {
  'use strict';

  const MESSAGES = {
    waiting: 'Waiting for your passkey\u2026',
    cancelled: 'The passkey request was cancelled or timed out. Try again.',
    exists: 'This device already has a passkey for this account.',
    unsupported: 'This browser cannot use passkeys.',
    network: 'Could not reach the vault. Check your connection and try again.',
    generic: 'Something went wrong with your passkey. Try again.'
  };

  // An error whose message is already fit to show to the user; `reason` is the
  // problem's reason code (RFC 9457 extension), when the vault gave one.
  class UserError extends Error {
    constructor(message, reason) { super(message); this.reason = reason || null; }
  }

  // ---- base64url <-> ArrayBuffer (fallbacks for older browsers) ----------
  function toBuffer(b64url) {
    let b64 = String(b64url).replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) b64 += '=';
    return Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0)).buffer;
  }

  function toBase64url(buf) {
    if (buf == null) return null; // e.g. userHandle is optional
    let bin = '';
    for (const byte of new Uint8Array(buf)) bin += String.fromCharCode(byte);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  // ---- WebAuthn options (JSON -> binary) and credential (binary -> JSON) --
  const withBufferIds = (list) => (list || []).map((c) => ({ ...c, id: toBuffer(c.id) }));

  function parseOptions(mode, json) {
    const PKC = window.PublicKeyCredential;
    if (mode === 'create') {
      if (typeof PKC.parseCreationOptionsFromJSON === 'function') {
        return PKC.parseCreationOptionsFromJSON(json);
      }
      return { ...json, challenge: toBuffer(json.challenge),
               user: { ...json.user, id: toBuffer(json.user.id) },
               excludeCredentials: withBufferIds(json.excludeCredentials) };
    }
    if (typeof PKC.parseRequestOptionsFromJSON === 'function') {
      return PKC.parseRequestOptionsFromJSON(json);
    }
    return { ...json, challenge: toBuffer(json.challenge),
             allowCredentials: withBufferIds(json.allowCredentials) };
  }

  function credentialToJSON(cred) {
    // Native toJSON() exists in recent browsers, but some password-manager
    // extensions wrap navigator.credentials and return objects without it.
    if (typeof cred.toJSON === 'function') {
      try { return cred.toJSON(); } catch (e) { /* use the manual version */ }
    }
    const r = cred.response;
    const response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) { // registration (create)
      response.attestationObject = toBase64url(r.attestationObject);
      response.transports = typeof r.getTransports === 'function' ? r.getTransports() : [];
    } else { // authentication (get)
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      response.userHandle = toBase64url(r.userHandle);
    }
    return { id: cred.id, rawId: toBase64url(cred.rawId), type: cred.type,
             authenticatorAttachment: cred.authenticatorAttachment || null,
             clientExtensionResults: {}, response };
  }

  // ---- HTTP --------------------------------------------------------------
  function csrfToken(form) {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) return meta.getAttribute('content');
    return form.elements.csrf ? form.elements.csrf.value : '';
  }

  // POST JSON and return the parsed 2xx body; otherwise throw a UserError.
  async function postJSON(url, body, form) {
    let res;
    try {
      res = await fetch(url, {
        method: 'POST', credentials: 'same-origin', body: JSON.stringify(body),
        headers: { 'Content-Type': 'application/json', 'Accept': 'application/json',
                   'X-CSRF-Token': csrfToken(form) }
      });
    } catch (e) {
      throw new UserError(MESSAGES.network); // fetch rejects only on network failure
    }
    const data = await res.json().catch(() => ({}));
    if (res.ok) return data;
    // RFC 9457 problem details: prefer the human-readable detail.
    throw new UserError(data.detail || data.title || MESSAGES.generic, data.reason);
  }

  function formFields(form) {
    const fields = {};
    for (const [name, value] of new FormData(form)) {
      if (name !== 'csrf' && typeof value === 'string') fields[name] = value;
    }
    return fields;
  }

  // Follow only same-origin paths: never "//host", "/\host" or absolute URLs.
  const safeRedirect = (url) => (typeof url === 'string' && /^\/(?![/\\])/.test(url) ? url : null);

  // ---- Passkey forms -----------------------------------------------------
  function messageFor(err, mode) {
    if (err instanceof UserError) return err.message;
    switch (err && err.name) {
      case 'NotAllowedError': case 'AbortError': return MESSAGES.cancelled;
      case 'InvalidStateError': return mode === 'create' ? MESSAGES.exists : MESSAGES.generic;
      case 'NotSupportedError': return MESSAGES.unsupported;
      default: return MESSAGES.generic;
    }
  }

  function showStatus(el, text, state) {
    el.textContent = text;
    el.classList.toggle('busy', state === 'busy');
    el.classList.toggle('error', state === 'error');
  }

  function setBusy(form, busy) {
    form.querySelectorAll('[type="submit"]').forEach((b) => { b.disabled = busy; });
    if (busy) form.setAttribute('aria-busy', 'true'); else form.removeAttribute('aria-busy');
  }

  // A form's hints for one refusal (data-passkey-hint="unknown_credential"), e.g. a
  // link to start again: shown after that refusal only.
  function showHints(form, reason) {
    form.querySelectorAll('[data-passkey-hint]').forEach((hint) => {
      hint.hidden = hint.getAttribute('data-passkey-hint') !== reason;
    });
  }

  async function runPasskey(form, status) {
    const mode = form.getAttribute('data-passkey') === 'create' ? 'create' : 'get';
    const fields = formFields(form);
    showHints(form, null);
    try {
      if (!window.PublicKeyCredential || !navigator.credentials) {
        throw new UserError(MESSAGES.unsupported);
      }
      setBusy(form, true);
      showStatus(status, MESSAGES.waiting, 'busy');
      const options = await postJSON(form.getAttribute('data-options'), fields, form);
      const publicKey = parseOptions(mode, options.publicKey);
      const cred = await navigator.credentials[mode]({ publicKey });
      if (!cred) throw new UserError(MESSAGES.cancelled);
      // getAttribute: form.action would be shadowed by a field named "action".
      const result = await postJSON(form.getAttribute('action') || location.href, {
        credential: credentialToJSON(cred),
        ceremony: options.ceremony || null,
        fields
      }, form);
      const target = safeRedirect(result.redirect);
      if (!target) throw new UserError(MESSAGES.generic);
      location.assign(target); // leave the button disabled while we navigate
    } catch (err) {
      showStatus(status, messageFor(err, mode), 'error');
      showHints(form, err instanceof UserError ? err.reason : null);
      setBusy(form, false);
      // Move focus so keyboard and screen-reader users land on the message.
      if (!status.hasAttribute('tabindex')) status.setAttribute('tabindex', '-1');
      status.focus();
    }
  }

  // The form's own status line, or the one it names with data-status: a line outside
  // the form (above a row of buttons, where a long message would break the row).
  function statusOf(form) {
    const named = form.getAttribute('data-status');
    return (named && document.getElementById(named)) || form.querySelector('[data-passkey-status]');
  }

  document.addEventListener('submit', (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute('data-passkey')) return;
    event.preventDefault();
    if (form.getAttribute('aria-busy') === 'true') return; // already running
    let status = statusOf(form) || document.getElementById('status');
    if (!status) { // no status element in the template: make one rather than fail silently
      status = form.appendChild(document.createElement('p'));
      status.setAttribute('role', 'alert');
    }
    runPasskey(form, status);
  });

  // Coming back through the back/forward cache would otherwise show
  // disabled buttons and a stale "Waiting…" message.
  window.addEventListener('pageshow', (event) => {
    if (!event.persisted) return;
    document.querySelectorAll('form[data-passkey]').forEach((form) => {
      setBusy(form, false);
      const status = statusOf(form);
      if (status) showStatus(status, '', null);
    });
  });

  // ---- Back to a service ---------------------------------------------------
  // "Taking you back to ..." follows its link at once. The link is ours (it redirects
  // on to the service): a form's answer could not, under form-action 'self'. replace(),
  // so the browser's Back button skips this page.
  const goBack = document.querySelector('a[data-go-back]');
  const backTo = goBack && safeRedirect(goBack.getAttribute('href'));
  if (backTo) location.replace(backTo);

  // ---- Print buttons -----------------------------------------------------
  document.addEventListener('click', (event) => {
    if (event.target instanceof Element && event.target.closest('[data-print]')) {
      event.preventDefault();
      window.print();
    }
  });
}());
