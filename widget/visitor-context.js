/*
 * flowgate chat widget: hands the host page's visitor context to the chat backend and renders a
 * small chat panel.
 *
 * Plain JavaScript, no build step, no dependencies. CSP-friendly: no eval, no inline handlers or
 * styles, every visitor-supplied string reaches the page through textContent only.
 *
 * Embed (see README):
 *   <script src="https://chat.example.com/widget/visitor-context.js"
 *           data-siteid="YOUR_SITEID"
 *           data-visitor-context='{"account_id":"USR-84920","ims_username":"Jane Smith"}'></script>
 * or define window.imsFlowConfig = { siteid, visitorContext } before the tag. The attribute wins.
 * A site with signed visitor context also sets data-visitor-context-token (or
 * imsFlowConfig.visitorContextToken): the JWT its server signed, sent as visitor_context_token.
 *
 * Init request: GET <origin>/public_FlowWidget/init?siteid=…&jsSessionId=…[&visitor_context=…]
 * where visitor_context is the UTF-8 JSON, standard base64, percent-encoded. It is left out when
 * there is no context (or an empty one), so an anonymous visitor gets every workflow step.
 *
 * Session key: at init the widget makes a random key for the chat session (32 bytes from
 * crypto.getRandomValues, base64url) and sends it in a Flowgate-Session-Key request header on
 * the init and every session-route request, never in a URL. It is kept beside the session id
 * for the tab (sessionStorage). With sessions.bind: key the edge attaches the stored context only
 * to requests that present it, and only an init presenting it can replace or delete that context.
 * A backend that answers CORS preflights itself must allow the header.
 *
 * Public API: window.imsFlowWidget.reload() re-initialises with the current context (call it after
 * a login or logout in a single-page app); its Promise resolves when the chat is ready and rejects
 * when the init fails (network, CORS, an error answer).
 */
(function () {
  'use strict';

  var INIT_PATH = '/public_FlowWidget/init';
  var CHAT_PATH = '/public_FlowWidget/chat';
  // The chat protocol's media type: the init route answers it with the conversation's state.
  var CHAT_TYPE = 'application/vnd.flowgate.chat+json';
  var SESSION_KEY = 'imsFlowWidget.jsSessionId.';
  var KEY_STORE = 'imsFlowWidget.sessionKey.';
  var KEY_HEADER = 'Flowgate-Session-Key';
  var ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
  var KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;

  var script = document.currentScript || findOwnScript();
  if (!script) {
    warn('cannot find its own <script> tag; not started');
    return;
  }
  var origin = new URL(script.src, window.location.href).origin;

  function findOwnScript() {
    var all = document.getElementsByTagName('script');
    for (var i = all.length - 1; i >= 0; i--) {
      if (/\/visitor-context\.js(\?|#|$)/.test(all[i].src)) return all[i];
    }
    return null;
  }

  function warn(message) {
    if (window.console && console.warn) console.warn('imsFlowWidget: ' + message);
  }

  function config() {
    var c = window.imsFlowConfig;
    return c && typeof c === 'object' ? c : {};
  }

  function siteId() {
    var s = script.getAttribute('data-siteid') || config().siteid;
    return typeof s === 'string' ? s : '';
  }

  // The context JSON to send, or null. A non-blank attribute wins over the config object, even
  // when it turns out to be unusable: the page asked for that one.
  function currentContext() {
    var attr = script.getAttribute('data-visitor-context');
    if (attr !== null && attr.trim() !== '') return contextJson(attr, 'data-visitor-context');
    var fromConfig = config().visitorContext;
    if (fromConfig === undefined || fromConfig === null || fromConfig === '') return null;
    return contextJson(fromConfig, 'imsFlowConfig.visitorContext');
  }

  // Accepts a JSON string or an object. A string is sent exactly as written (the edge applies
  // the product's rules to it); an object is serialised. Non-objects and `{}` send nothing.
  function contextJson(value, where) {
    var parsed;
    var json;
    if (typeof value === 'string') {
      try {
        parsed = JSON.parse(value);
      } catch (e) {
        warn(where + ' is not valid JSON; no visitor context sent');
        return null;
      }
      json = value;
    } else {
      parsed = value;
      try {
        json = JSON.stringify(value);
      } catch (e) {
        warn(where + ' cannot be serialised to JSON; no visitor context sent');
        return null;
      }
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      warn(where + ' must be a JSON object; no visitor context sent');
      return null;
    }
    if (Object.keys(parsed).length === 0) return null;
    return json;
  }

  // The host server's signed-context token (a JWT: base64url parts joined by dots), or null.
  function currentToken() {
    var t = script.getAttribute('data-visitor-context-token');
    if (t === null || t.trim() === '') t = config().visitorContextToken;
    if (typeof t !== 'string' || t.trim() === '') return null;
    t = t.trim();
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(t)) {
      warn('the visitor context token is not a JWT; not sent');
      return null;
    }
    return t;
  }

  // UTF-8 bytes → standard base64 (btoa alone only handles Latin-1).
  function base64Utf8(text) {
    var bytes = new TextEncoder().encode(text);
    var binary = '';
    for (var i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  // A random, unguessable id kept for the browser tab's session, per site.
  function sessionId(site) {
    var key = SESSION_KEY + site;
    var id = null;
    try {
      id = window.sessionStorage.getItem(key);
    } catch (e) {
      id = null;
    }
    if (id && ID_PATTERN.test(id) && id.length >= 32) return id;
    if (memoryIds[key]) return memoryIds[key];
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    id = '';
    for (var i = 0; i < bytes.length; i++) id += (bytes[i] + 0x100).toString(16).slice(1);
    memoryIds[key] = id;
    try {
      window.sessionStorage.setItem(key, id);
    } catch (e) {
      // Storage disabled: the id lives as long as the page.
    }
    return id;
  }
  var memoryIds = {};

  // The session's key: 32 random bytes, base64url without padding. Stored as "<id> <key>" so a
  // key is only ever sent with the session id it was made for; a new id gets a new key.
  function sessionKey(site, session) {
    var name = KEY_STORE + site;
    var stored = null;
    try {
      stored = window.sessionStorage.getItem(name);
    } catch (e) {
      stored = null;
    }
    if (!stored) stored = memoryIds[name] || null;
    if (stored) {
      var parts = stored.split(' ');
      if (parts.length === 2 && parts[0] === session && KEY_PATTERN.test(parts[1])) return parts[1];
    }
    var bytes = new Uint8Array(32);
    window.crypto.getRandomValues(bytes);
    var key = btoa(String.fromCharCode.apply(null, bytes))
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .replace(/=+$/, '');
    memoryIds[name] = session + ' ' + key;
    try {
      window.sessionStorage.setItem(name, session + ' ' + key);
    } catch (e) {
      // Storage disabled: the key lives as long as the page, like the id.
    }
    return key;
  }

  // The request headers of every widget request: the session key, and more when asked.
  function headers(extra) {
    var h = { Accept: CHAT_TYPE };
    h[KEY_HEADER] = current.key;
    for (var name in extra) h[name] = extra[name];
    return h;
  }

  function query(site, session) {
    return 'siteid=' + encodeURIComponent(site) + '&jsSessionId=' + encodeURIComponent(session);
  }

  function initUrl(site, session, json) {
    var url = origin + INIT_PATH + '?' + query(site, session);
    if (json !== null) url += '&visitor_context=' + encodeURIComponent(base64Utf8(json));
    return url;
  }

  // ---- chat panel -------------------------------------------------------------------------

  var panel = null;
  var generation = 0;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function ensurePanel() {
    if (panel) return panel;
    if (!document.querySelector('link[data-imsfw-style]')) {
      var css = document.createElement('link');
      css.rel = 'stylesheet';
      css.href = origin + '/widget/visitor-context.css';
      css.setAttribute('data-imsfw-style', '');
      document.head.appendChild(css);
    }
    var host = document.getElementById('ims-flow-widget');
    if (!host) {
      host = el('div', 'imsfw-popover');
      host.id = 'ims-flow-widget';
      document.body.appendChild(host);
    }
    host.classList.add('imsfw');
    panel = host;
    return panel;
  }

  function render(state, error) {
    var root = ensurePanel();
    while (root.firstChild) root.removeChild(root.firstChild);
    root.appendChild(el('div', 'imsfw-head', 'Chat with us'));
    var log = el('ol', 'imsfw-log');
    log.setAttribute('aria-live', 'polite');
    var transcript = (state && state.transcript) || [];
    for (var i = 0; i < transcript.length; i++) {
      var from = transcript[i].from === 'visitor' ? 'visitor' : 'bot';
      log.appendChild(el('li', 'imsfw-msg imsfw-' + from, String(transcript[i].text)));
    }
    root.appendChild(log);
    if (state && state.prompt) {
      root.appendChild(promptForm(state.prompt, error));
    } else if (state && state.finished) {
      root.appendChild(el('p', 'imsfw-done', 'An operator will be with you shortly.'));
    } else {
      root.appendChild(el('p', 'imsfw-error', error || 'Chat is unavailable right now.'));
    }
    log.scrollTop = log.scrollHeight;
  }

  function promptForm(prompt, error) {
    var form = el('form', 'imsfw-form');
    form.setAttribute('data-node', String(prompt.node));
    form.noValidate = true;
    var fields = prompt.fields || [];
    for (var i = 0; i < fields.length; i++) {
      var label = el('label', 'imsfw-field');
      label.appendChild(el('span', null, String(fields[i].label || fields[i].field_name)));
      var input = el('input');
      input.name = String(fields[i].field_name);
      input.type = /email/.test(input.name) ? 'email' : 'text';
      input.autocomplete = 'off';
      label.appendChild(input);
      form.appendChild(label);
    }
    form.appendChild(el('button', 'imsfw-send', 'Send'));
    if (error) form.appendChild(el('p', 'imsfw-error', error));
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var values = {};
      var inputs = form.querySelectorAll('input');
      for (var j = 0; j < inputs.length; j++) values[inputs[j].name] = inputs[j].value;
      send({ node: prompt.node, values: values }).catch(function () {});
    });
    var first = form.querySelector('input');
    if (first) first.focus();
    return form;
  }

  function setStatus(root, status) {
    root.setAttribute('data-status', status);
    root.setAttribute('data-generation', String(generation));
  }

  function announce(state) {
    var detail = { siteid: current.site, jsSessionId: current.session, state: state };
    document.dispatchEvent(new CustomEvent('imsflow:update', { detail: detail }));
  }

  var current = { site: '', session: '', key: '' };

  function handle(response, mine) {
    return response
      .json()
      .catch(function () {
        return null;
      })
      .then(function (state) {
        if (mine !== generation) return;
        var ok = state && (state.prompt || state.finished);
        render(state, response.ok ? null : (state && state.error) || null);
        setStatus(ensurePanel(), ok ? 'ready' : 'error');
        announce(state);
        if (!response.ok || !ok) throw new Error('chat init failed (HTTP ' + response.status + ')');
      });
  }

  function failed(mine) {
    if (mine !== generation) return;
    render(null, 'Chat is unavailable right now.');
    setStatus(ensurePanel(), 'error');
  }

  /** `failed`, then a rejection, so `reload()` callers learn that the init did not work. */
  function rejected(mine, why) {
    failed(mine);
    return Promise.reject(new Error(why));
  }

  function send(answer) {
    var mine = generation;
    setStatus(ensurePanel(), 'sending');
    return fetch(origin + CHAT_PATH + '?' + query(current.site, current.session), {
      method: 'POST',
      headers: headers({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(answer),
      cache: 'no-store',
    }).then(
      function (r) {
        return handle(r, mine);
      },
      function () {
        failed(mine);
      },
    );
  }

  function init() {
    var site = siteId();
    generation += 1;
    var mine = generation;
    if (!ID_PATTERN.test(site)) {
      warn('no valid siteid (data-siteid or imsFlowConfig.siteid); not started');
      return rejected(mine, 'no valid siteid');
    }
    var session = sessionId(site);
    current = { site: site, session: session, key: sessionKey(site, session) };
    setStatus(ensurePanel(), 'loading');
    var url = initUrl(current.site, current.session, currentContext());
    var token = currentToken();
    if (token !== null) url += '&visitor_context_token=' + encodeURIComponent(token);
    return fetch(url, { cache: 'no-store', headers: headers({}) }).then(
      function (r) {
        return handle(r, mine);
      },
      function () {
        // A network error, or a response the browser withheld (CORS).
        return rejected(mine, 'chat init failed (network or CORS)');
      },
    );
  }

  function start() {
    // The page did not ask for this init: its failure is shown in the panel, not thrown.
    init().catch(function () {});
  }

  window.imsFlowWidget = {
    /** Re-initialises the chat with the page's current visitor context; the promise rejects
     *  when the init fails (network, CORS, an error answer). */
    reload: init,
    /** The site id, the tab's chat session id and its key (for the page's own support tooling,
     *  which sends the key in the Flowgate-Session-Key header of its own session-route requests;
     *  both are secrets: never in a URL, a log or analytics). */
    session: function () {
      return { siteid: current.site, jsSessionId: current.session, sessionKey: current.key };
    },
  };

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
