/*
 * The demo page's own script: the operator's "Visitor Context" panel and the simulated
 * single-page-app login and logout. Every value is written with textContent.
 */
(function () {
  'use strict';

  // Anything the page's Content-Security-Policy blocks is recorded (the tests read it).
  window.demoCspViolations = [];
  document.addEventListener('securitypolicyviolation', function (e) {
    window.demoCspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
  });

  function byId(id) {
    return document.getElementById(id);
  }

  function fill(tableId, rows, empty) {
    var body = byId(tableId).tBodies[0];
    while (body.firstChild) body.removeChild(body.firstChild);
    if (rows.length === 0) {
      var tr = body.insertRow();
      var td = tr.insertCell();
      td.colSpan = byId(tableId).tHead.rows[0].cells.length;
      td.className = 'empty';
      td.textContent = empty;
      return;
    }
    for (var i = 0; i < rows.length; i++) {
      var row = body.insertRow();
      for (var j = 0; j < rows[i].length; j++) row.insertCell().textContent = String(rows[i][j]);
    }
  }

  function render(view) {
    var status = byId('operator-status');
    status.textContent =
      'Status: ' + view.status + ' · site ' + view.site + ' · chat session ' + view.session;
    fill('operator-context', view.context || [], 'No visitor context for this chat.');
    fill(
      'operator-captured',
      (view.captured || []).map(function (c) {
        return [c.field, c.value, c.source === 'prefill' ? 'pre-filled' : 'typed'];
      }),
      'Nothing captured yet.',
    );
    fill(
      'operator-analytics',
      (view.analytics || []).map(function (a) {
        return [a.node, a.completed, a.skipped];
      }),
      '',
    );
  }

  var latest = 0;
  function refresh(detail) {
    if (!detail || !detail.siteid || !detail.jsSessionId) return;
    var mine = ++latest;
    var url =
      '/public_FlowWidget/operator?siteid=' +
      encodeURIComponent(detail.siteid) +
      '&jsSessionId=' +
      encodeURIComponent(detail.jsSessionId);
    // The operator view is a session route: with sessions.bind: key it needs the session's key.
    var own = window.imsFlowWidget && window.imsFlowWidget.session();
    var headers = own && own.sessionKey ? { 'Flowgate-Session-Key': own.sessionKey } : {};
    fetch(url, { cache: 'no-store', headers: headers })
      .then(function (r) {
        return r.json();
      })
      .then(function (view) {
        if (mine !== latest) return;
        render(view);
        byId('operator').setAttribute('data-updates', String(mine));
      })
      .catch(function () {
        byId('operator-status').textContent = 'Operator view unavailable.';
      });
  }
  document.addEventListener('imsflow:update', function (e) {
    refresh(e.detail);
  });

  function widgetTag() {
    return document.querySelector('script[src$="/widget/visitor-context.js"]');
  }

  // A single-page app changes who is signed in without a page load, then asks the widget to
  // re-initialise with the new context.
  function signIn(context) {
    var config = window.imsFlowConfig || (window.imsFlowConfig = {});
    if (!config.siteid) config.siteid = widgetTag().getAttribute('data-siteid');
    widgetTag().removeAttribute('data-visitor-context');
    if (context) {
      config.visitorContext = context;
      byId('signed-in').textContent = 'Signed in as ' + context.ims_username;
    } else {
      delete config.visitorContext;
      byId('signed-in').textContent = 'Not signed in';
    }
    window.imsFlowWidget.reload();
  }

  document.addEventListener('DOMContentLoaded', function () {
    var login = byId('spa-login');
    login.addEventListener('click', function () {
      signIn(JSON.parse(login.getAttribute('data-login-context')));
    });
    byId('spa-logout').addEventListener('click', function () {
      signIn(null);
    });
  });
})();
