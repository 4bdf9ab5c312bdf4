// The "Connect Azure Storage" wizard against the public API, as a frontend drives it:
// same origin, a bearer token and the X-Activeloop-Org-Id header on every call. The
// customer panel plays the customer's Azure through the local stand-in's control
// endpoints, which the page's origin proxies under /wizard/customer/.
'use strict';

(() => {
  const POLL_MS = 3000; // the detail is polled this often while a window is open
  const TOKEN_KEY = 'azcreds.wizard.token';
  const ORG_KEY = 'azcreds.wizard.org';

  const STEPS = [
    'Create credential',
    'Install service principal',
    'Submit tenant ID',
    'Grant Storage Blob Data Contributor',
    'Submit storage details',
    'Set as org default (optional)',
  ];

  // Probe outcomes, worded as the wizard shows them.
  const OUTCOMES = {
    probing: ['Checking access…', 'info'],
    connected: ['Credential connected.', 'ok'],
    waiting_for_role_propagation: ['Waiting for role propagation.', 'info'],
    role_not_sufficient: ['Role is not sufficient.', 'bad'],
    container_not_found: ['Container not found or not readable.', 'bad'],
    storage_account_not_found: ['Storage account not found.', 'bad'],
    network_blocked: ["Blocked by the storage account's network rules.", 'bad'],
    unexpected_error: ['Azure Storage operation failed with an unexpected error', 'bad'],
    timed_out: ['Timed out.', 'warn'],
  };

  const CHECKS = [
    ['user_delegation_key', 'User delegation key'],
    ['write', 'Write'],
    ['list_read', 'List and read'],
    ['delete', 'Delete'],
  ];

  const STATES = {
    draft: 'draft',
    sp_pending: 'looking for the service principal',
    sp_verified: 'service principal found',
    access_pending: 'verifying access',
    verified: 'verified',
    unverified_saved: 'saved, unverified',
  };

  const SOURCES = {
    workspace: 'its own credential link',
    org_default: 'the org default',
    environment_default: 'the environment default (platform storage)',
  };

  const ROLES = ['Storage Blob Data Contributor', 'Storage Blob Data Reader'];

  const S = {
    org: '',
    token: '',
    cfg: { authority: '', customer: '/wizard/customer/', consent: '/wizard/consent/' },
    creds: [],
    cur: null, // the open credential's detail
    creating: false,
    ack: {}, // credential id -> "I've run it" clicked
    refused: {}, // credential id -> why an administrator's consent came back refused
    forms: {}, // credential id -> values typed into its forms
    screenKey: '',
    pollTimer: 0,
    cust: {
      loaded: false, tenants: [], accounts: [], tenant: '', account: '', role: ROLES[0], scope: 'account',
      container: '', installed: {}, assignments: [], firewall: {}, log: [], refuse: false, consentKey: '',
    },
    ws: { view: null, creds: null },
  };

  // ---------- DOM ----------

  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, v);
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }
  const $ = (id) => document.getElementById(id);
  const show = (el, on) => { el.hidden = !on; };
  const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');

  function notice(text, kind) {
    const n = $('notice');
    n.replaceChildren(h('span', { text }), h('button', { type: 'button', class: 'link', text: 'Dismiss', onclick: () => show(n, false) }));
    n.className = 'notice ' + (kind || 'info');
    show(n, true);
  }

  function copyable(text, id) {
    const pre = h('pre', { class: 'code', id }, text);
    const btn = h('button', { type: 'button', class: 'copy secondary', text: 'Copy' });
    btn.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        const r = document.createRange();
        r.selectNodeContents(pre);
        const sel = getSelection();
        sel.removeAllRanges();
        sel.addRange(r);
        document.execCommand('copy');
      }
      btn.textContent = 'Copied';
      setTimeout(() => { btn.textContent = 'Copy'; }, 1500);
    });
    return h('div', { class: 'codebox' }, pre, btn);
  }

  // field is a labelled input with room for the API's message about it.
  function field(label, name, attrs, help) {
    return h('label', { class: 'field' },
      h('span', { text: label }),
      h('input', Object.assign({ name, autocomplete: 'off', spellcheck: 'false' }, attrs)),
      help ? h('small', { text: help }) : null,
      h('div', { class: 'field-error', 'data-for': name, hidden: true }));
  }

  function formError() {
    return h('div', { class: 'field-error', 'data-for': '', hidden: true });
  }

  function clearErrors(form) {
    for (const el of form.querySelectorAll('.field-error')) { el.textContent = ''; show(el, false); }
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  }

  // showError puts the API's message under the field it names, or under the form.
  function showError(form, err) {
    clearErrors(form);
    let slot = err.field ? form.querySelector(`.field-error[data-for="${CSS.escape(err.field)}"]`) : null;
    if (slot) {
      const input = form.querySelector(`[name="${CSS.escape(err.field)}"]`);
      if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
    } else {
      slot = form.querySelector('.field-error[data-for=""]');
    }
    if (!slot) { notice(err.message, 'bad'); return; }
    slot.textContent = err.message + (err.requestId && !err.field ? ` (request id ${err.requestId})` : '');
    show(slot, true);
  }

  async function busy(button, fn) {
    if (button) button.disabled = true;
    try { return await fn(); } finally { if (button) button.disabled = false; }
  }

  // ---------- the API ----------

  class ApiError extends Error {
    constructor(status, body, text) {
      const e = (body && body.error) || {};
      super(e.message || text || `HTTP ${status}`);
      this.status = status;
      this.code = e.code || '';
      this.field = e.field || '';
      this.requestId = e.request_id || '';
      this.candidates = e.candidates || (body && body.candidates) || null;
    }
  }

  async function call(path, method, body, headers) {
    const opts = { method, headers: Object.assign({}, headers), cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!r.ok) throw new ApiError(r.status, data, text);
    return data;
  }

  function api(method, path, body) {
    return call(path, method, body, { Authorization: 'Bearer ' + S.token, 'X-Activeloop-Org-Id': S.org });
  }
  const orgPath = (p) => '/organizations/' + encodeURIComponent(S.org) + p;
  const credPath = (id, p) => orgPath('/credentials/' + encodeURIComponent(id) + (p || ''));
  const customer = (method, path, body) => call(S.cfg.customer + path, method, body, {});

  // ---------- signing in ----------

  // signIn takes the token from the URL fragment (which no server ever sees), keeps it in
  // this tab's sessionStorage and removes it from the address bar.
  function signIn() {
    const frag = new URLSearchParams(location.hash.slice(1));
    if (frag.get('token')) {
      sessionStorage.setItem(TOKEN_KEY, frag.get('token'));
      sessionStorage.setItem(ORG_KEY, frag.get('org') || '');
      history.replaceState(null, '', location.pathname + location.search);
    }
    S.token = sessionStorage.getItem(TOKEN_KEY) || '';
    S.org = sessionStorage.getItem(ORG_KEY) || '';
    return S.token !== '' && S.org !== '';
  }

  function signedOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    for (const id of ['credentials', 'wizard', 'workspaces', 'customer']) show($(id), false);
    show($('signin'), true);
    $('who').replaceChildren();
    if (message) notice(message, 'bad');
  }

  function renderWho() {
    $('who').replaceChildren(
      h('span', { text: 'Organization ' }), h('strong', { id: 'org-name', text: S.org }),
      h('button', { type: 'button', class: 'link', text: 'Sign out', onclick: () => signedOut('') }));
  }

  // consentReturn reads the answer an administrator's consent sends back to the page
  // (?admin_consent=True&tenant=...&state=<credential id>, or ?error=...&error_description=...).
  function consentReturn() {
    const q = new URLSearchParams(location.search);
    if (!q.has('admin_consent') && !q.has('error')) return '';
    history.replaceState(null, '', location.pathname);
    const id = q.get('state') || '';
    if (q.has('error')) {
      const why = q.get('error_description') || q.get('error');
      if (id) S.refused[id] = why;
      notice(`Admin consent was not granted: ${why}`, 'bad');
      return id;
    }
    const tenant = q.get('tenant') || '';
    if (id) {
      delete S.refused[id];
      S.ack[id] = true;
      S.forms[id] = Object.assign(S.forms[id] || {}, { tenant_id: tenant });
    }
    notice(`An administrator of tenant ${tenant} granted consent: the service principal is installed. Submit the tenant ID to continue.`, 'ok');
    return id;
  }

  // ---------- credentials ----------

  async function loadList() {
    try {
      const out = await api('GET', orgPath('/credentials'));
      S.creds = out.credentials || [];
      renderList();
      renderWorkspace();
    } catch (e) {
      if (e.status === 401 || e.status === 403) signedOut(`Not signed in for ${S.org}: ${e.message}`);
      else notice(e.message, 'bad');
    }
  }

  function stateBadge(state) {
    return h('span', { class: 'badge state-' + state, title: STATES[state] || state, text: state });
  }

  const usable = (c) => c.state === 'verified' || c.state === 'unverified_saved';

  function renderList() {
    const box = $('credential-list');
    if (S.creds.length === 0) {
      box.replaceChildren(h('p', { class: 'help', text: 'No credentials yet. Add one to connect an Azure storage account.' }));
      return;
    }
    const rows = S.creds.map((c) => {
      const del = h('button', { type: 'button', class: 'danger small', text: 'Delete' });
      del.addEventListener('click', () => confirmDelete(del, c));
      return h('tr', { 'data-id': c.id },
        h('td', {}, h('button', { type: 'button', class: 'link', text: c.name, onclick: () => openCredential(c.id) })),
        h('td', { class: 'mono', text: c.base_path }),
        h('td', {}, stateBadge(c.state)),
        h('td', {}, c.is_org_default ? h('span', { class: 'badge default', text: 'org default' })
          : usable(c) ? h('button', { type: 'button', class: 'secondary small', text: 'Make default', onclick: () => setDefault(c.id, true) }) : ''),
        h('td', {}, del));
    });
    box.replaceChildren(h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, ['Name', 'Base path', 'State', 'Org default', ''].map((t) => h('th', { text: t })))),
      h('tbody', {}, rows)));
  }

  // confirmDelete asks once more on the button itself, then deletes.
  function confirmDelete(btn, c) {
    if (btn.dataset.armed !== 'yes') {
      btn.dataset.armed = 'yes';
      btn.textContent = 'Really delete?';
      setTimeout(() => { btn.dataset.armed = ''; btn.textContent = 'Delete'; }, 4000);
      return;
    }
    busy(btn, async () => {
      try {
        await api('DELETE', credPath(c.id));
        notice(`Deleted ${c.name}. Its app registration is removed in the background; workspaces linked to it fall back unless they are locked.`, 'info');
        if (S.cur && S.cur.id === c.id) closeWizard();
        await loadList();
      } catch (e) { notice(e.message, 'bad'); }
    });
  }

  async function setDefault(id, on) {
    try {
      if (on) {
        await api('PUT', orgPath('/credential'), { credential_id: id });
      } else {
        await api('DELETE', orgPath('/credential'));
      }
    } catch (e) { notice(e.message, 'bad'); }
    await loadList();
    // Draw the screen again: the toggle shows what the API holds, not what was clicked.
    S.screenKey = '';
    if (S.cur) await refreshCurrent();
  }

  function openCredential(id) {
    S.creating = false;
    S.screenKey = '';
    return refreshCurrent(id);
  }

  function closeWizard() {
    clearTimeout(S.pollTimer);
    S.cur = null;
    S.creating = false;
    S.screenKey = '';
    show($('wizard'), false);
    renderCustomer();
  }

  async function refreshCurrent(id) {
    id = id || (S.cur && S.cur.id);
    if (!id) return;
    try {
      setCurrent(await api('GET', credPath(id)));
    } catch (e) {
      if (e.status === 401) { signedOut(`Signed out: ${e.message}`); return; }
      if (e.status === 404) { closeWizard(); await loadList(); }
      notice(e.message, 'bad');
    }
  }

  function setCurrent(c) {
    const before = S.cur && S.cur.id === c.id ? S.cur.state + c.is_org_default : '';
    S.cur = c;
    renderWizard();
    // The panel is drawn again only when what it shows changes, so a poll never resets
    // what someone is typing into it.
    const key = [c.id, c.state, spOf(c), c.azure.storage_account, c.azure.container_name].join('|');
    if (key !== S.cust.key) renderCustomer();
    if (before !== c.state + c.is_org_default) loadList();
    schedulePoll();
  }

  const status = (c) => (c.progress ? c.progress.status : '');
  const windowOpen = (c) => c.state === 'sp_pending' || (c.state === 'access_pending' && status(c) !== 'timed_out');

  function schedulePoll() {
    clearTimeout(S.pollTimer);
    if (S.cur && windowOpen(S.cur)) S.pollTimer = setTimeout(() => refreshCurrent(), POLL_MS);
  }

  // ---------- the wizard ----------

  function currentSteps(c) {
    if (!c) return [1];
    switch (c.state) {
      case 'draft': return S.ack[c.id] || c.azure.tenant_id || c.last_error ? [3] : [2];
      case 'sp_pending': return [3];
      case 'sp_verified': return [4, 5];
      case 'access_pending': return [5];
      default: return [6];
    }
  }

  function renderSteps(c) {
    const cur = currentSteps(c);
    $('steps').replaceChildren(...STEPS.map((name, i) => {
      const n = i + 1;
      const cls = cur.includes(n) ? 'current' : n < Math.min(...cur) ? 'done' : 'todo';
      return h('li', { class: cls, 'aria-current': cls === 'current' ? 'step' : false }, h('span', { class: 'n', text: String(n) }), name);
    }));
  }

  function renderWizard() {
    const c = S.cur;
    show($('wizard'), S.creating || !!c);
    if (!S.creating && !c) return;
    $('wizard-title').textContent = c ? `${c.name} · Azure` : 'Add credential · Azure';
    renderSteps(c);
    const key = c ? [c.id, c.state, status(c) === 'timed_out', c.last_error_code, c.is_org_default, c.portal_url,
      !!c.role_assignment_command, !!S.ack[c.id], c.generation].join('|') : 'create';
    const screen = $('screen');
    if (key !== S.screenKey) {
      S.screenKey = key;
      screen.replaceChildren(...(c ? screenFor(c) : [createScreen()]).filter(Boolean));
      if (!$('live')) screen.append(liveSlot());
    }
    if (c) $('live').replaceChildren(...liveFor(c));
  }

  // liveSlot is where a screen shows what changes while its window is open (liveFor).
  const liveSlot = () => h('div', { id: 'live' });

  function createScreen() {
    const form = h('form', { class: 'form', id: 'create-form', novalidate: true },
      h('h3', { text: '1. Create the credential' }),
      field('Name', 'name', { placeholder: 'prod-azure-bloblake' }, 'Internal label. Letters, digits, hyphens, underscores.'),
      field('Base path', 'base_path', { placeholder: 'az://<storage_account>/<container>' },
        'The container must already exist. An optional path prefix scopes tables under it: az://bloblake/lakedata/data.'),
      h('p', { class: 'help' }, 'Storage account: 3 to 24 characters, lowercase letters and digits only. ',
        'Container: 3 to 63 characters, lowercase letters, digits, and hyphens; slashes belong to the prefix, never the container name.'),
      formError(),
      h('button', { type: 'submit', id: 'create-submit', text: 'Create' }));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const v = Object.fromEntries(new FormData(form));
      busy(form.querySelector('button[type=submit]'), async () => {
        try {
          const c = await api('POST', orgPath('/credentials'), { name: v.name.trim(), storage_type: 'azure_federated', base_path: v.base_path.trim() });
          S.creating = false;
          S.screenKey = '';
          setCurrent(c);
          await loadList();
        } catch (err) { showError(form, err); }
      });
    });
    return form;
  }

  function screenFor(c) {
    switch (c.state) {
      case 'draft': return S.ack[c.id] || c.azure.tenant_id || c.last_error ? tenantScreen(c) : installScreen(c);
      case 'sp_pending': return tenantScreen(c);
      case 'sp_verified': return storageScreen(c);
      case 'access_pending': return verifyScreen(c);
      case 'verified': return doneScreen(c);
      case 'unverified_saved': return doneScreen(c);
      default: return [h('p', { text: `State ${c.state}` })];
    }
  }

  // consentLink is the admin-consent URL opened on the page's origin: the local stand-in
  // plays the authority, and the page proxies its admin-consent endpoint. A URL that names
  // another authority, or no redirect back to the wizard, stays a URL to copy.
  function consentLink(url) {
    const a = S.cfg.authority;
    if (!url || !a || !url.startsWith(a) || !url.includes('redirect_uri=')) return '';
    return S.cfg.consent + url.slice(a.length);
  }

  function installScreen(c) {
    const local = consentLink(c.admin_consent_url);
    const refused = S.refused[c.id];
    return [
      h('h3', { text: '2. Install the service principal' }),
      refused ? h('div', { class: 'outcome bad', id: 'outcome' }, h('strong', { id: 'outcome-title', text: 'Admin consent was not granted.' }),
        h('p', { id: 'outcome-message', text: refused }),
        h('p', { text: 'The administrator cancelled or was refused: open the admin-consent page again, or run the command below.' })) : null,
      h('p', { text: 'Run this command in your Azure tenant (the app ID is pre-filled):' }),
      copyable(c.install_command, 'install-command'),
      h('p', { text: 'If your account cannot run az ad sp create, ask a tenant administrator to open the admin-consent URL instead. Azure auto-creates the service principal in one click:' }),
      local ? h('p', {}, h('a', { class: 'button secondary', id: 'admin-consent-link', href: local, text: 'Open the admin-consent page' })) : null,
      copyable(c.admin_consent_url, 'admin-consent-url'),
      local ? null : h('p', { class: 'help', text: 'On the local stack this URL names the real Entra sign-in page: play the administrator with "Install the service principal" in the customer panel instead.' }),
      h('p', { class: 'help' }, 'The output\'s id field is the service principal object ID, distinct from the app ID ', h('code', { text: c.azure.app_id }), '. The wizard shows it once it finds the service principal.'),
      h('button', { type: 'button', id: 'installed-ack', text: 'I\'ve run it', onclick: () => { S.ack[c.id] = true; renderWizard(); } }),
    ];
  }

  function tenantScreen(c) {
    const saved = (S.forms[c.id] || {}).tenant_id || c.azure.tenant_id || '';
    const form = h('form', { class: 'form inline', id: 'tenant-form', novalidate: true },
      field('Tenant ID', 'tenant_id', { placeholder: 'ceeafc3d-f026-420b-a75b-9df0c970e6d1', value: saved }),
      h('button', { type: 'submit', id: 'tenant-submit', text: c.state === 'sp_pending' ? 'Submit again' : 'Submit' }),
      formError());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const tenant = new FormData(form).get('tenant_id').trim();
      S.forms[c.id] = Object.assign(S.forms[c.id] || {}, { tenant_id: tenant });
      busy(form.querySelector('button[type=submit]'), async () => {
        try { setCurrent(await api('POST', credPath(c.id, '/tenant'), { tenant_id: tenant })); } catch (err) { showError(form, err); }
      });
    });
    const out = [h('h3', { text: '3. Submit your tenant ID' })];
    if (c.state === 'draft' && c.last_error) {
      out.push(h('div', { class: 'outcome bad', id: 'outcome' },
        h('strong', { text: c.last_error }),
        h('p', { text: 'Most often az ad sp create ran in another tenant, or an administrator cancelled the consent. Verify with az account show --query tenantId, run az ad sp create --id ' + c.azure.app_id + ' again ("already exists" is fine) and resubmit.' }),
        c.last_error_provider_error ? h('small', { text: `Provider error ${c.last_error_provider_error}` }) : null));
    }
    out.push(h('p', { class: 'help', text: 'Find it on the Azure Portal home page, or run az account show --query tenantId -o tsv.' }), form);
    if (c.state === 'draft') {
      out.push(h('button', { type: 'button', class: 'link', text: 'Back to the install command', onclick: () => { S.ack[c.id] = false; renderWizard(); } }));
    }
    return out;
  }

  function roleBlock(c) {
    const out = [h('h3', { text: '4. Grant the role' }),
      h('p', { text: 'The Deeplake service principal needs Storage Blob Data Contributor on the storage account. Reader is not sufficient (Deeplake writes); container scope is too narrow.' })];
    if (c.role_assignment_command) out.push(copyable(c.role_assignment_command, 'role-command'));
    if (c.portal_url) {
      const iam = /\/iam$/.test(c.portal_url);
      out.push(h('p', {}, h('a', { class: 'button secondary', id: 'portal-button', href: c.portal_url, target: '_blank', rel: 'noopener noreferrer', text: 'Open in Azure Portal' }),
        h('span', { class: 'help', id: 'portal-where', text: iam ? ` Access control (IAM) of ${c.portal_account}: Add, Add role assignment.`
          : ` Your storage accounts: open ${c.portal_account}, then Access control (IAM).` })));
    }
    out.push(h('p', { class: 'help', text: 'Azure RBAC takes 30 to 90 seconds to reach the storage data plane; Deeplake keeps checking within its window.' }));
    return out;
  }

  function storageForm(c, submitLabel) {
    const saved = S.forms[c.id] || {};
    const a = c.azure;
    const val = (k, fallback) => saved[k] || fallback || '';
    const form = h('form', { class: 'form', id: 'storage-form', novalidate: true },
      h('div', { class: 'grid2' },
        field('Subscription ID', 'subscription_id', { placeholder: 'UUID', value: val('subscription_id', a.subscription_id) }, 'Azure Portal, Subscriptions'),
        field('Resource group', 'resource_group', { value: val('resource_group', a.resource_group) }, 'The resource group holding the account'),
        field('Storage account', 'storage_account', { value: val('storage_account', a.storage_account) }, 'The account name only, no https://'),
        field('Container name', 'container_name', { value: val('container_name', a.container_name) }, 'The container of your base path')),
      formError(),
      h('button', { type: 'submit', id: 'verify-access', text: submitLabel }));
    form.addEventListener('input', () => { S.forms[c.id] = Object.assign(S.forms[c.id] || {}, Object.fromEntries(new FormData(form))); });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const v = Object.fromEntries(new FormData(form));
      for (const k of Object.keys(v)) v[k] = v[k].trim();
      S.forms[c.id] = Object.assign(S.forms[c.id] || {}, v);
      busy(form.querySelector('button[type=submit]'), async () => {
        try { setCurrent(await api('POST', credPath(c.id, '/storage'), v)); } catch (err) { showError(form, err); }
      });
    });
    return form;
  }

  function storageScreen(c) {
    return [
      h('p', { class: 'ok-line', id: 'sp-found' }, 'Service principal found in tenant ', h('code', { text: c.azure.tenant_id }),
        '. Object ID: ', h('code', { id: 'sp-object-id', text: c.azure.sp_object_id })),
      ...roleBlock(c),
      h('h3', { text: '5. Submit storage details' }),
      liveSlot(),
      storageForm(c, 'Verify access'),
    ];
  }

  function verifyScreen(c) {
    const out = [h('h3', { text: '5. Verify access' }),
      h('p', { class: 'help', text: 'Deeplake keeps checking read and write access to your container until the window closes.' }),
      liveSlot()];
    if (status(c) === 'timed_out') {
      const retry = h('button', { type: 'button', id: 'retry', text: 'Retry' });
      retry.addEventListener('click', () => busy(retry, async () => {
        const a = c.azure;
        try {
          setCurrent(await api('POST', credPath(c.id, '/storage'), { subscription_id: a.subscription_id, resource_group: a.resource_group,
            storage_account: a.storage_account, container_name: a.container_name }));
        } catch (err) { notice(err.message, 'bad'); }
      }));
      const save = h('button', { type: 'button', id: 'save-anyway', class: 'secondary', text: 'Save anyway' });
      save.addEventListener('click', () => busy(save, async () => {
        try { setCurrent(await api('POST', credPath(c.id, '/save-unverified'), {})); } catch (err) { notice(err.message, 'bad'); }
      }));
      out.push(h('div', { class: 'actions' }, retry, save),
        h('p', { class: 'help', text: 'Save anyway leaves the credential unverified but usable; verification is retried on the first /creds call.' }));
    }
    out.push(h('details', {}, h('summary', { text: 'Role command and Azure Portal (if step 4 was missed)' }), ...roleBlock(c)));
    return out;
  }

  function doneScreen(c) {
    const toggle = h('input', { type: 'checkbox', id: 'org-default', checked: c.is_org_default });
    toggle.addEventListener('change', () => busy(toggle, () => setDefault(c.id, toggle.checked)));
    const head = c.state === 'verified'
      ? h('div', { class: 'outcome ok', id: 'outcome' }, h('strong', { text: 'Credential connected.' }),
        h('p', { text: 'State is now verified. The credential is ready to use across your workspaces.' }))
      : h('div', { class: 'outcome warn', id: 'outcome' }, h('strong', { text: 'Saved without verification.' }),
        h('p', { text: 'State is unverified_saved: the credential is usable. Verification is retried on the first /creds call, which promotes it to verified on success.' }));
    const checks = c.progress && c.progress.checks && c.progress.checks.length ? c.progress.checks : null;
    return [head,
      checks && c.state !== 'verified' ? h('p', { class: 'help', text: 'The last access check before it was saved:' }) : null,
      checks ? checksTable(checks) : null,
      h('h3', { text: '6. Set as org default (optional)' }),
      h('label', { class: 'toggle' }, toggle, h('span', { text: 'Set as org default' })),
      h('p', { class: 'help', text: 'Every workspace in the organization without its own credential link uses the org default. Resolution order: workspace credential, org default, environment default.' }),
      meta(c)];
  }

  // liveFor is the part of a screen that changes while a window is open.
  function liveFor(c) {
    if (c.state === 'sp_pending') {
      const p = c.progress || {};
      return [h('div', { class: 'outcome info', id: 'outcome' },
        h('strong', { text: 'Looking for the service principal in your tenant…' }),
        h('p', { text: 'Deeplake polls Microsoft Graph in your tenant; this usually completes in 5 to 30 seconds.' }),
        h('small', { text: `Attempt ${p.attempts || 0}; polling continues until ${time(p.deadline)}.` }))];
    }
    if (c.state === 'access_pending' || (c.state === 'sp_verified' && c.last_error)) return [outcomeBox(c), meta(c)];
    return [];
  }

  const HINTS = {
    reader_role: 'The role is read-only (Reader): Deeplake writes tables, so it needs Storage Blob Data Contributor on the storage account.',
    container_scope: 'The role is granted on the container, which is too narrow: user delegation keys need a role on the storage account. Grant Storage Blob Data Contributor at the storage account scope.',
    no_role: 'No role is visible for this service principal yet. Check what it has with az role assignment list --assignee <SP_OBJECT_ID> --all --query \'[].{role:roleDefinitionName, scope:scope}\' -o table; if the role is right, this is RBAC propagation (up to 10 minutes).',
    allow_platform_network: 'The storage account\'s firewall refused Deeplake: allow the platform\'s network on the account\'s Networking page, then verify again.',
  };

  function outcomeBox(c) {
    const st = status(c) || 'probing';
    const [title, kind] = OUTCOMES[st] || [st, 'info'];
    const p = c.progress || {};
    const hint = c.last_error_hint && HINTS[c.last_error_hint]
      ? HINTS[c.last_error_hint].replace('<SP_OBJECT_ID>', c.azure.sp_object_id || '<SP_OBJECT_ID>') : '';
    return h('div', { class: 'outcome ' + kind, id: 'outcome', 'data-status': st },
      h('strong', { id: 'outcome-title', text: title }),
      c.last_error ? h('p', { id: 'outcome-message', text: c.last_error }) : null,
      hint ? h('p', { class: 'hint', id: 'outcome-hint', 'data-hint': c.last_error_hint, text: hint }) : null,
      p.checks ? checksTable(p.checks) : null,
      p.kind ? h('small', { text: st === 'timed_out' || !windowOpen(c) ? `Attempts: ${p.attempts}.` : `Attempt ${p.attempts}; checking until ${time(p.deadline)}.` }) : null);
  }

  function checksTable(checks) {
    const by = Object.fromEntries((checks || []).map((ch) => [ch.name, ch]));
    return h('table', { class: 'checks', id: 'checks' }, h('tbody', {}, CHECKS.map(([name, label]) => {
      const ch = by[name];
      const result = ch ? ch.result : 'pending';
      return h('tr', { 'data-check': name },
        h('td', { text: label }),
        h('td', {}, h('span', { class: 'badge result-' + result, text: result })),
        h('td', { class: 'mono', text: ch && ch.provider_code ? ch.provider_code : '' }));
    })));
  }

  function meta(c) {
    const bits = [`Credential ${c.id}`, `state ${c.state}`];
    if (c.last_error_provider_error) bits.push(`provider error ${c.last_error_provider_error}`);
    if (c.last_error_request_id) bits.push(`request id ${c.last_error_request_id}`);
    return h('p', { class: 'meta', text: bits.join(' · ') });
  }

  // ---------- workspaces ----------

  function renderWorkspace() {
    const box = $('workspace-view');
    const v = S.ws.view;
    if (!v) { box.replaceChildren(); return; }
    const e = v.effective || {};
    const nameOf = (id) => (S.creds.find((c) => c.id === id) || {}).name || id;
    const link = v.credential_id ? h('span', {}, 'linked to ', h('strong', { text: nameOf(v.credential_id) }))
      : h('span', { text: 'no link (falls back to the org default, then the environment default)' });
    const lock = v.locked
      ? h('span', {}, h('span', { class: 'badge locked', text: 'locked' }),
        ` since ${time(v.locked_at)} by its first table "${v.first_table || ''}"`,
        v.pin ? `; pinned to ${SOURCES[v.pin.source] || v.pin.source}${v.pin.credential_id ? ' ' + nameOf(v.pin.credential_id) : ''}` : '')
      : h('span', { text: 'unlocked: the link can change until the first table' });
    const where = h('span', {}, SOURCES[e.source] || e.source,
      e.credential_name ? ` (${e.credential_name}${e.credential_state ? ', ' + e.credential_state : ''}${e.credential_deleted ? ', deleted' : ''})` : '',
      ' → ', h('code', { text: `az://${e.storage_account}/${e.container_name}${e.prefix ? '/' + e.prefix : ''}` }));
    const rows = [['Workspace', h('strong', { id: 'ws-id', text: v.workspace_id })], ['Link', link], ['Lock', lock], ['Resolves to', where]];
    const out = [h('table', { class: 'kv', id: 'ws-table' }, h('tbody', {}, rows.map(([k, val]) => h('tr', {}, h('th', { text: k }), h('td', {}, val)))))];
    if (!v.locked) {
      const sel = h('select', { id: 'ws-link-select' }, S.creds.filter(usable).map((c) => h('option', { value: c.id, text: c.name, selected: c.id === v.credential_id })));
      out.push(h('div', { class: 'actions' }, sel,
        h('button', { type: 'button', class: 'secondary small', text: 'Change credential', disabled: sel.options.length === 0,
          onclick: (ev) => busy(ev.target, () => workspaceCall('PUT', v.workspace_id, '/credential', { credential_id: sel.value })) }),
        v.credential_id ? h('button', { type: 'button', class: 'link', text: 'Remove link',
          onclick: (ev) => busy(ev.target, () => workspaceCall('DELETE', v.workspace_id, '/credential')) }) : null));
    }
    const table = h('input', { id: 'ws-table-name', value: 'smoke_test', autocomplete: 'off' });
    out.push(h('div', { class: 'actions' }, h('label', {}, 'Table ', table),
      h('button', { type: 'button', id: 'ws-creds', text: 'Test /creds', onclick: (ev) => busy(ev.target, () => testCreds(v.workspace_id, table.value.trim())) })));
    if (S.ws.creds && S.ws.creds.ws === v.workspace_id) out.push(S.ws.creds.el);
    box.replaceChildren(...out);
  }

  // workspaceCall calls a workspace route (the collection when ws is "") and shows the
  // workspace it answers with.
  async function workspaceCall(method, ws, suffix, body) {
    const path = ws === '' ? '/workspaces' : '/workspaces/' + encodeURIComponent(ws) + (suffix || '');
    try {
      S.ws.view = await api(method, orgPath(path), body);
      show($('workspace-error'), false);
      renderWorkspace();
    } catch (e) {
      workspaceError(e, ws || (body && body.workspace_id));
    }
  }

  // workspaceError shows an error; a registration that must name one of several verified
  // credentials offers them.
  function workspaceError(e, ws) {
    const box = $('workspace-error');
    const kids = [h('span', { text: e.message })];
    if (e.status === 409 && e.field === 'credential_id') {
      kids.push(h('div', { class: 'actions', id: 'ws-candidates' }, h('span', { text: 'Pick one:' }), (e.candidates || []).map((c) => h('button', { type: 'button', class: 'secondary small', 'data-id': c.id, text: c.name,
        onclick: () => workspaceCall('POST', '', '', { workspace_id: ws, credential_id: c.id }) }))));
    }
    box.replaceChildren(...kids);
    show(box, true);
  }

  async function testCreds(ws, table) {
    let el;
    try {
      const r = await call(`/api/org/${encodeURIComponent(ws)}/ds/${encodeURIComponent(table)}/creds`, 'POST', undefined,
        { Authorization: 'Bearer ' + S.token, 'X-Activeloop-Org-Id': S.org });
      el = h('div', { class: 'outcome ok', id: 'creds-result' }, h('strong', { text: `/creds issued a SAS for table ${table}` }),
        h('table', { class: 'kv' }, h('tbody', {}, [
          ['Source', `${r.source} (${SOURCES[r.source] || r.source})`], ['Container', r.container_url], ['Path prefix', r.path_prefix],
          ['Expires', new Date(r.expires_at).toLocaleString()], ['SAS', `hidden (${(r.sas_token || '').length} characters)`],
        ].map(([k, val]) => h('tr', {}, h('th', { text: k }), h('td', { class: 'mono', text: val }))))));
    } catch (e) {
      el = h('div', { class: 'outcome bad', id: 'creds-result' }, h('strong', { text: '/creds failed' }), h('p', { text: `${e.code || e.status}: ${e.message}` }));
    }
    S.ws.creds = { ws, el };
    await workspaceCall('GET', ws);
    await loadList();
    if (S.cur) await refreshCurrent();
  }

  function setupWorkspaces() {
    const form = $('workspace-form');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const ws = new FormData(form).get('workspace').trim();
      busy(e.submitter, () => workspaceCall('POST', '', '', { workspace_id: ws }));
    });
    $('workspace-open').addEventListener('click', () => {
      const ws = new FormData(form).get('workspace').trim();
      if (ws) workspaceCall('GET', ws);
    });
  }

  // ---------- the customer's side ----------

  function say(text, kind) {
    S.cust.log.unshift({ text, kind: kind || 'info', at: new Date().toLocaleTimeString() });
    S.cust.log.length = Math.min(S.cust.log.length, 8);
    renderCustomerLog();
  }

  async function loadCustomer() {
    try {
      const [tenants, accounts] = await Promise.all([customer('GET', 'tenants'), customer('GET', 'storageAccounts')]);
      const home = new Set(tenants.filter((t) => t.home).map((t) => t.id));
      S.cust.tenants = tenants.filter((t) => !t.home);
      S.cust.accounts = accounts.filter((a) => !home.has(a.tenant_id));
      S.cust.tenant = S.cust.tenant || (S.cust.tenants[0] || {}).id || '';
      S.cust.loaded = true;
    } catch (e) {
      say(`The stand-in's control endpoints did not answer: ${e.message}`, 'bad');
    }
    renderCustomer();
  }

  const basePathParts = (c) => {
    const m = /^az:\/\/([^/]+)\/([^/]+)/.exec((c && c.base_path) || '');
    return m ? { account: m[1], container: m[2] } : { account: '', container: '' };
  };

  function spOf(c) {
    if (!c) return '';
    return c.azure.sp_object_id || S.cust.installed[c.azure.app_id + '@' + S.cust.tenant] || '';
  }

  function accountOf(c) {
    const name = S.cust.account || (c && (c.azure.storage_account || basePathParts(c).account)) || (S.cust.accounts[0] || {}).name || '';
    return S.cust.accounts.find((a) => a.name === name) || { name };
  }

  function scopeFor(c) {
    const a = accountOf(c);
    if (!a.subscription_id) return '';
    const acct = `/subscriptions/${a.subscription_id}/resourceGroups/${a.resource_group}/providers/Microsoft.Storage/storageAccounts/${a.name}`;
    return S.cust.scope === 'container' ? `${acct}/blobServices/default/containers/${containerOf(c)}` : acct;
  }

  const containerOf = (c) => S.cust.container || (c && (c.azure.container_name || basePathParts(c).container)) || '';

  function act(btn, label, fn) {
    return busy(btn, async () => {
      try { await fn(); } catch (e) { say(`${label}: ${e.message}`, 'bad'); }
      renderCustomer();
    });
  }

  function select(id, options, value, onchange) {
    const el = h('select', { id }, options.map(([v, t]) => h('option', { value: v, text: t, selected: v === value })));
    el.addEventListener('change', () => { onchange(el.value); renderCustomer(); });
    return el;
  }

  function fill(formId, values) {
    const form = $(formId);
    if (!form) { say('Open the wizard at that step first.', 'warn'); return; }
    for (const [k, v] of Object.entries(values)) {
      const input = form.querySelector(`[name="${k}"]`);
      if (input) { input.value = v; input.dispatchEvent(new Event('input', { bubbles: true })); }
    }
  }

  function renderCustomer() {
    const aside = $('customer');
    show(aside, !!S.token);
    if (!S.cust.loaded) return;
    const c = S.cur;
    S.cust.key = c ? [c.id, c.state, spOf(c), c.azure.storage_account, c.azure.container_name].join('|') : '';
    const sp = spOf(c);
    const acct = accountOf(c);
    const body = [];

    body.push(h('h3', { text: 'Tenant' }),
      h('div', { class: 'actions' },
        select('cust-tenant', S.cust.tenants.map((t) => [t.id, t.id]), S.cust.tenant, (v) => { S.cust.tenant = v; }),
        h('button', { type: 'button', class: 'secondary small', id: 'cust-fill-tenant', text: 'Use in the tenant form', onclick: () => fill('tenant-form', { tenant_id: S.cust.tenant }) })));

    body.push(h('h3', { text: 'Service principal' }));
    if (!c) {
      body.push(h('p', { class: 'help', text: 'Create or open a credential: its app ID is what the customer installs.' }));
    } else {
      body.push(h('p', { class: 'mono small', text: `az ad sp create --id ${c.azure.app_id}` }),
        h('div', { class: 'actions' },
          h('button', { type: 'button', id: 'cust-install', text: 'Install the service principal', onclick: (ev) => act(ev.target, 'Install', async () => {
            const out = await customer('POST', `tenants/${encodeURIComponent(S.cust.tenant)}/servicePrincipals`, { appId: c.azure.app_id });
            S.cust.installed[c.azure.app_id + '@' + S.cust.tenant] = out.id;
            say(`Service principal installed in tenant ${S.cust.tenant}: object ID ${out.id}`, 'ok');
          }) }),
          h('button', { type: 'button', class: 'link', id: 'cust-uninstall', text: 'Remove it', onclick: (ev) => act(ev.target, 'Remove', async () => {
            await customer('DELETE', `tenants/${encodeURIComponent(S.cust.tenant)}/servicePrincipals/${encodeURIComponent(c.azure.app_id)}`);
            delete S.cust.installed[c.azure.app_id + '@' + S.cust.tenant];
            say(`Service principal removed from tenant ${S.cust.tenant}`, 'info');
          }) })));
      const consent = consentLink(c.admin_consent_url);
      if (consent) {
        body.push(h('div', { class: 'actions' }, h('span', { text: 'Or play the administrator, who' }),
          select('cust-consent-answer', [['accept', `accepts in tenant ${S.cust.tenant.slice(0, 8)}…`], ['refuse', 'refuses']], S.cust.refuse ? 'refuse' : 'accept', (v) => { S.cust.refuse = v === 'refuse'; S.cust.consentKey = ''; }),
          h('a', { href: consent, id: 'cust-consent', text: 'when opening the admin-consent link' })));
        administrator(c);
      }
    }

    body.push(h('h3', { text: 'Storage account' }),
      h('div', { class: 'actions' },
        select('cust-account', S.cust.accounts.map((a) => [a.name, a.name]), acct.name, (v) => { S.cust.account = v; }),
        h('button', { type: 'button', class: 'secondary small', id: 'cust-fill-storage', text: 'Use in the storage form', disabled: !acct.subscription_id,
          onclick: () => fill('storage-form', { subscription_id: acct.subscription_id, resource_group: acct.resource_group, storage_account: acct.name, container_name: containerOf(c) }) })),
      acct.subscription_id ? h('p', { class: 'mono small', text: `subscription ${acct.subscription_id} · resource group ${acct.resource_group}` }) : null);

    const container = h('input', { id: 'cust-container', value: containerOf(c), autocomplete: 'off', placeholder: 'container' });
    container.addEventListener('change', () => { S.cust.container = container.value.trim(); });
    body.push(h('div', { class: 'actions' }, container,
      h('button', { type: 'button', class: 'secondary small', id: 'cust-container-create', text: 'Create container', disabled: !acct.name, onclick: (ev) => act(ev.target, 'Create container', async () => {
        const name = container.value.trim();
        const out = await customer('POST', `storageAccounts/${encodeURIComponent(acct.name)}/containers`, { name });
        say(out.created ? `Container ${name} created in ${acct.name}` : `Container ${name} already exists in ${acct.name}`, 'ok');
      }) })));

    const fw = S.cust.firewall[acct.name];
    body.push(h('div', { class: 'actions' },
      h('span', { text: `Firewall: ${fw === undefined ? 'unknown' : fw ? 'on (refuses every request)' : 'off'}` }),
      h('button', { type: 'button', class: 'secondary small', id: 'cust-firewall', text: fw ? 'Turn the firewall off' : 'Turn the firewall on', disabled: !acct.name,
        onclick: (ev) => act(ev.target, 'Firewall', async () => {
          const out = await customer('POST', `storageAccounts/${encodeURIComponent(acct.name)}/firewall`, { enabled: !fw });
          S.cust.firewall[acct.name] = out.enabled;
          say(`Firewall of ${acct.name} ${out.enabled ? 'on' : 'off'}`, 'info');
        }) })));

    body.push(h('h3', { text: 'Role assignment' }),
      h('div', { class: 'actions' },
        select('cust-role', ROLES.map((r) => [r, r]), S.cust.role, (v) => { S.cust.role = v; }),
        select('cust-scope', [['account', 'storage account scope'], ['container', 'container scope']], S.cust.scope, (v) => { S.cust.scope = v; })),
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'cust-grant', text: 'Grant', disabled: !sp || !scopeFor(c), onclick: (ev) => act(ev.target, 'Grant', async () => {
          const out = await customer('POST', 'roleAssignments', { principal_id: sp, role: S.cust.role, scope: scopeFor(c) });
          say(`${out.roleDefinitionName} granted at ${S.cust.scope} scope: ${out.state} until ${time(out.effective_at)}`, 'ok');
          await loadAssignments();
        }) }),
        sp ? null : h('span', { class: 'help', text: 'needs the service principal' })),
      h('div', { id: 'cust-assignments' }),
      h('h3', { text: 'Activity' }),
      h('ul', { id: 'cust-log', class: 'log' }));

    $('customer-body').replaceChildren(...body.filter(Boolean));
    renderAssignments();
    renderCustomerLog();
    if (fw === undefined && acct.name && S.cust.accounts.some((a) => a.name === acct.name)) {
      S.cust.firewall[acct.name] = false; // until the stand-in says otherwise
      customer('GET', `storageAccounts/${encodeURIComponent(acct.name)}/firewall`).then((out) => {
        S.cust.firewall[acct.name] = out.enabled;
        renderCustomer();
      }).catch(() => {});
    }
  }

  // administrator records how the stand-in's tenant administrator answers c's admin
  // consent (the panel's tenant, accept or refuse), once per change.
  function administrator(c) {
    const key = [c.azure.app_id, S.cust.tenant, S.cust.refuse].join('|');
    if (key === S.cust.consentKey) return;
    S.cust.consentKey = key;
    customer('PUT', 'consent/' + encodeURIComponent(c.azure.app_id), { tenant_id: S.cust.tenant, refuse: S.cust.refuse })
      .then(() => say(S.cust.refuse ? 'The administrator will refuse the admin consent' : `The administrator will accept the admin consent in tenant ${S.cust.tenant}`, 'info'))
      .catch((e) => { S.cust.consentKey = ''; say(`Administrator: ${e.message}`, 'bad'); });
  }

  async function loadAssignments() {
    const sp = spOf(S.cur);
    if (!sp) { S.cust.assignments = []; renderAssignments(); return; }
    try {
      S.cust.assignments = await customer('GET', 'roleAssignments?principal_id=' + encodeURIComponent(sp));
    } catch (e) { say(`Role assignments: ${e.message}`, 'bad'); }
    renderAssignments();
  }

  function renderAssignments() {
    const box = $('cust-assignments');
    if (!box) return;
    const list = S.cust.assignments.filter((a) => a.principalId === spOf(S.cur));
    if (list.length === 0) { box.replaceChildren(h('p', { class: 'help', text: 'No role assignments for this service principal.' })); return; }
    // A grant past its effective time is active (the stand-in said so at that time).
    const stateOf = (a) => (a.state === 'propagating' && Date.parse(a.effective_at) <= Date.now() ? 'active' : a.state);
    box.replaceChildren(h('table', { class: 'list small' }, h('tbody', {}, list.map((a) => ({ ...a, state: stateOf(a) })).map((a) => h('tr', {},
      h('td', { text: a.roleDefinitionName }),
      h('td', { class: 'mono', text: a.scope.replace(/^.*\/storageAccounts\//, '') }),
      h('td', {}, h('span', { class: 'badge ra-' + a.state, text: a.state })),
      h('td', {}, a.state === 'propagating' || a.state === 'active'
        ? h('button', { type: 'button', class: 'link', text: 'Revoke', onclick: (ev) => act(ev.target, 'Revoke', async () => {
          await customer('DELETE', 'roleAssignments/' + encodeURIComponent(a.name));
          say(`${a.roleDefinitionName} revoked (takes effect after propagation)`, 'info');
          await loadAssignments();
        }) }) : ''))))));
  }

  function renderCustomerLog() {
    const ul = $('cust-log');
    if (!ul) return;
    ul.replaceChildren(...S.cust.log.map((l) => h('li', { class: l.kind }, h('span', { class: 'at', text: l.at }), ' ', l.text)));
  }

  // ---------- start ----------

  async function start() {
    $('signin-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const v = Object.fromEntries(new FormData(e.target));
      sessionStorage.setItem(TOKEN_KEY, v.token.trim());
      sessionStorage.setItem(ORG_KEY, v.org.trim());
      location.reload();
    });
    $('add-credential').addEventListener('click', () => {
      clearTimeout(S.pollTimer);
      S.cur = null;
      S.creating = true;
      S.screenKey = '';
      renderWizard();
      renderCustomer();
      const first = document.querySelector('#create-form input');
      if (first) first.focus();
    });
    $('close-wizard').addEventListener('click', closeWizard);
    setupWorkspaces();
    if (!signIn()) { signedOut(''); return; }
    try { S.cfg = await call('config.json', 'GET'); } catch { /* the defaults */ }
    renderWho();
    for (const id of ['credentials', 'workspaces']) show($(id), true);
    const returned = consentReturn();
    await loadList();
    await loadCustomer();
    if (returned) await openCredential(returned);
    setInterval(() => { if (S.cur && spOf(S.cur)) loadAssignments(); }, POLL_MS);
  }

  start();
})();
