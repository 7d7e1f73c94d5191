// The console's shell: the router (History API, one page per path), the tenant navigation,
// the account menu and tenant switcher. Pages live in ./pages/, one module per area.

import { api, session, clearSession, whoAmI, forgetMe } from './api.js';
import { h, replace, errorBox, toast } from './ui.js';
import * as onboarding from './pages/onboarding.js';
import * as numbers from './pages/numbers.js';
import * as agent from './pages/agent.js';
import * as calls from './pages/calls.js';
import * as usage from './pages/usage.js';
import * as campaigns from './pages/campaigns.js';
import * as team from './pages/team.js';
import * as developers from './pages/developers.js';
import * as audit from './pages/audit.js';

const RANK = { viewer: 0, member: 1, admin: 2, owner: 3 };

/** The tenant sections: [path segment, title, page]. */
const SECTIONS = [
  ['numbers', 'Numbers', numbers.page],
  ['agents', 'Agents', agent.page],
  ['calls', 'Calls', calls.page],
  ['usage', 'Usage', usage.page],
  ['billing', 'Billing', usage.billingPage],
  ['campaigns', 'Campaigns', campaigns.page],
  ['do-not-call', 'Do not call', campaigns.doNotCallPage],
  ['team', 'Team', team.page],
  ['api-keys', 'API keys', developers.apiKeysPage],
  ['webhooks', 'Webhooks', developers.webhooksPage],
  ['provider-keys', 'Provider keys', developers.providerKeysPage],
  ['audit', 'Audit log', audit.page],
];

/** Pages reachable without a session. */
const PUBLIC = {
  '/login': onboarding.loginPage,
  '/signup': onboarding.signupPage,
  '/verify-email': onboarding.verifyEmailPage,
  '/reset-password': onboarding.resetPasswordPage,
};

let timers = [];
let generation = 0;

/** Goes to `path` (pushes history) and renders it. */
export function navigate(path, { replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

function clearTimers() {
  for (const timer of timers) clearInterval(timer);
  timers = [];
}

function context(main, extra) {
  const mine = generation;
  return {
    main,
    navigate,
    query: new URLSearchParams(location.search),
    /** Runs `fn` every `ms` while this page is shown. */
    every(ms, fn) {
      const timer = setInterval(() => {
        if (mine !== generation || document.hidden) return;
        fn();
      }, ms);
      timers.push(timer);
    },
    /** Whether this page is still the one shown (a late answer must not draw over another). */
    current: () => mine === generation,
    ...extra,
  };
}

function renderAccount(user) {
  const box = document.getElementById('account');
  if (!user) {
    replace(box, h('a', { href: '/login' }, 'Log in'), ' ', h('a', { href: '/signup', class: 'btn' }, 'Sign up'));
    return;
  }
  const tenants = user.tenants || [];
  const slug = currentSlug();
  const switcher = tenants.length > 0 ? h('label', { class: 'switch' }, h('span', { class: 'sr-only' }, 'Tenant'),
    h('select', {
      id: 'tenant-switch',
      onchange: (event) => navigate(`/tenants/${encodeURIComponent(event.target.value)}/${currentSection() || 'numbers'}`),
    }, (slug ? [] : [h('option', { value: '' }, 'Choose a tenant')]).concat(tenants.map((t) =>
      h('option', { value: t.slug, selected: t.slug === slug }, `${t.name} (${t.role})`))))) : null;
  replace(box,
    switcher,
    h('span', { class: 'who' }, user.user ? user.user.email : 'API key'),
    h('button', { type: 'button', class: 'link', onclick: logout }, 'Log out'));
}

async function logout() {
  const current = session();
  try {
    if (current) await api('POST', '/api/v1/auth/logout');
  } catch {
    // the session ends here either way
  }
  clearSession();
  forgetMe();
  navigate('/login');
}

function currentSlug() {
  const match = location.pathname.match(/^\/tenants\/([^/]+)/);
  return match ? decodeURIComponent(match[1]) : null;
}

function currentSection() {
  const match = location.pathname.match(/^\/tenants\/[^/]+\/([^/]+)/);
  return match ? match[1] : null;
}

function renderNav(slug, active) {
  const nav = document.getElementById('nav');
  if (!slug) {
    replace(nav);
    nav.hidden = true;
    return;
  }
  nav.hidden = false;
  replace(nav, h('ul', {}, SECTIONS.map(([segment, title]) => h('li', {},
    h('a', {
      href: `/tenants/${encodeURIComponent(slug)}/${segment}`,
      'aria-current': segment === active ? 'page' : null,
    }, title)))));
}

function verifyBanner(user) {
  if (!user || !user.user || user.user.emailVerified) return null;
  return h('div', { class: 'banner', role: 'note' },
    `Confirm your e-mail address: we sent a link to ${user.user.email}. `,
    h('button', { type: 'button', class: 'link', onclick: async () => {
      try {
        await api('POST', '/api/v1/auth/verify-email/resend');
        toast('Sent a new link.');
      } catch (error) {
        toast(error.message);
      }
    } }, 'Send it again'));
}

/** Renders the page of the current location. */
export async function render() {
  generation += 1;
  clearTimers();
  const main = document.getElementById('main');
  const path = location.pathname.replace(/\/+$/, '') || '/';
  replace(main, h('p', { class: 'loading' }, 'Loading…'));
  let user = null;
  try {
    user = await whoAmI();
  } catch {
    clearSession();
    forgetMe();
  }
  renderAccount(user);
  try {
    if (PUBLIC[path]) {
      renderNav(null);
      await PUBLIC[path](context(main, { user }));
    } else if (path === '/invitations/accept') {
      renderNav(null);
      await onboarding.acceptInvitationPage(context(main, { user, reloadMe: () => whoAmI(true) }));
    } else if (!user) {
      const next = location.pathname + location.search;
      navigate(`/login?next=${encodeURIComponent(next)}`, { replaceState: true });
      return;
    } else if (path === '/' || path === '/tenants') {
      renderNav(null);
      const tenants = user.tenants || [];
      if (path === '/' && tenants.length > 0) {
        navigate(`/tenants/${encodeURIComponent(tenants[0].slug)}/numbers`, { replaceState: true });
        return;
      }
      onboarding.tenantsPage(context(main, { user }));
    } else {
      const match = path.match(/^\/tenants\/([^/]+)(?:\/([^/]+))?(?:\/(.+))?$/);
      const slug = match && decodeURIComponent(match[1]);
      const membership = slug && (user.tenants || []).find((t) => t.slug === slug);
      if (!membership) {
        renderNav(null);
        replace(main, h('h1', {}, 'Not found'), h('p', {}, 'No such tenant among yours. ', h('a', { href: '/tenants' }, 'Your tenants')));
        return;
      }
      if (match[2] === 'agent') {
        // The single-agent page's old address: the default agent.
        navigate(`/tenants/${encodeURIComponent(slug)}/agents/default`, { replaceState: true });
        return;
      }
      const segment = match[2] || 'numbers';
      const entry = SECTIONS.find(([name]) => name === segment);
      renderNav(slug, segment);
      if (!entry) {
        replace(main, h('h1', {}, 'Not found'), h('p', {}, 'No such page.'));
        return;
      }
      const banner = verifyBanner(user);
      replace(main);
      if (banner) main.append(banner);
      const role = membership.role;
      await entry[2](context(main, {
        user,
        slug,
        tenant: membership,
        role,
        sub: match[3] ? decodeURIComponent(match[3]) : null,
        can: (needed) => RANK[role] >= RANK[needed],
      }));
    }
  } catch (error) {
    main.append(errorBox(error));
  }
  const heading = main.querySelector('h1');
  document.title = heading ? `${heading.textContent} · Switchboard` : 'Switchboard console';
  if (heading && document.activeElement === document.body) main.focus({ preventScroll: true });
}

// Links inside the console navigate without reloading.
document.addEventListener('click', (event) => {
  const link = event.target.closest('a');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const href = link.getAttribute('href');
  if (!href || !href.startsWith('/') || href.startsWith('/api/') || link.hasAttribute('download') || link.target) return;
  event.preventDefault();
  navigate(href);
  document.getElementById('main').focus({ preventScroll: true });
});

window.addEventListener('popstate', render);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) document.dispatchEvent(new Event('switchboard:visible'));
});
render();
