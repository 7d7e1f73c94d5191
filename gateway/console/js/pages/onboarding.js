// Sign up, log in, e-mail verification, password reset, invitations and the tenant list.
// The e-mailed links carry a single-use token in the query; it is taken out of the address
// bar at once (history.replaceState), and the page sends no Referer anywhere.

import { api, saveTokens, session, whoAmI } from '../api.js';
import { h, replace, form, toast, errorBox } from '../ui.js';

const INVITATION = 'switchboard.invitation';

/** Takes `?token=` out of the address bar and returns it. */
function takeToken(ctx) {
  const token = ctx.query.get('token');
  if (token) history.replaceState(null, '', location.pathname);
  return token;
}

function nextPath(ctx) {
  const next = ctx.query.get('next');
  // Only paths of this console: never an absolute URL (open redirect).
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

/** `/login`. */
export function loginPage(ctx) {
  replace(ctx.main,
    h('h1', {}, 'Log in'),
    form({
      fields: [
        { name: 'email', label: 'E-mail address', type: 'email', required: true, autocomplete: 'username' },
        { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password' },
      ],
      submit: 'Log in',
      async onSubmit(values) {
        const answer = await api('POST', '/api/v1/auth/login', { email: values.email.trim(), password: values.password });
        saveTokens(answer.tokens);
        await whoAmI(true);
        ctx.navigate(nextPath(ctx));
      },
    }),
    h('p', {}, 'New here? ', h('a', { href: `/signup${location.search}` }, 'Create an account'), ' · ',
      h('a', { href: '/reset-password' }, 'Forgot your password?')));
}

/** `/signup`. */
export function signupPage(ctx) {
  replace(ctx.main,
    h('h1', {}, 'Create your account'),
    h('p', {}, 'You get a tenant of your own on the free plan: one number and a monthly allowance of calls.'),
    form({
      fields: [
        { name: 'name', label: 'Your name', required: true, autocomplete: 'name' },
        { name: 'email', label: 'E-mail address', type: 'email', required: true, autocomplete: 'email' },
        { name: 'company', label: 'Company', required: true, autocomplete: 'organization', help: 'Becomes your tenant; its short name is used in URLs.' },
        { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'new-password', help: 'At least 10 characters, not a common password.' },
      ],
      submit: 'Sign up',
      async onSubmit(values) {
        const answer = await api('POST', '/api/v1/auth/signup', {
          email: values.email.trim(), password: values.password, name: values.name.trim(), company: values.company.trim(),
        });
        saveTokens(answer.tokens);
        await whoAmI(true);
        toast(`Welcome! We sent a confirmation link to ${answer.user.email}.`);
        const next = nextPath(ctx);
        ctx.navigate(next !== '/' ? next : `/tenants/${encodeURIComponent(answer.tenant.slug)}/numbers`);
      },
    }),
    h('p', {}, 'Already have an account? ', h('a', { href: `/login${location.search}` }, 'Log in')));
}

/** `/verify-email?token=…` (the link of the confirmation e-mail). */
export async function verifyEmailPage(ctx) {
  const token = takeToken(ctx);
  replace(ctx.main, h('h1', {}, 'Confirm your e-mail address'));
  if (!token) {
    ctx.main.append(h('p', {}, 'Open the link from the confirmation e-mail. ',
      session() ? h('a', { href: '/' }, 'Back to the console') : h('a', { href: '/login' }, 'Log in')));
    return;
  }
  try {
    await api('POST', '/api/v1/auth/verify-email', { token });
    if (session()) await whoAmI(true);
    ctx.main.append(h('p', { class: 'success', role: 'status' }, 'Your e-mail address is confirmed.'),
      h('p', {}, session() ? h('a', { href: '/', class: 'btn' }, 'Continue to the console') : h('a', { href: '/login', class: 'btn' }, 'Log in')));
  } catch (error) {
    ctx.main.append(errorBox(error), h('p', {}, 'Links work once and expire after 48 hours; log in to send a new one.'));
  }
}

/** `/reset-password` (ask for a link) and `/reset-password?token=…` (choose a new password). */
export function resetPasswordPage(ctx) {
  const token = takeToken(ctx);
  if (!token) {
    replace(ctx.main,
      h('h1', {}, 'Reset your password'),
      form({
        fields: [{ name: 'email', label: 'E-mail address', type: 'email', required: true, autocomplete: 'email' }],
        submit: 'Send a reset link',
        async onSubmit(values, element) {
          await api('POST', '/api/v1/auth/password-reset', { email: values.email.trim() });
          element.replaceWith(h('p', { class: 'success', role: 'status' },
            'If an account uses that address, a reset link is on its way. It works once, for an hour.'));
        },
      }));
    return;
  }
  replace(ctx.main,
    h('h1', {}, 'Choose a new password'),
    form({
      fields: [{ name: 'password', label: 'New password', type: 'password', required: true, autocomplete: 'new-password', help: 'At least 10 characters, not a common password.' }],
      submit: 'Set password',
      async onSubmit(values, element) {
        await api('POST', '/api/v1/auth/password-reset/confirm', { token, password: values.password });
        element.replaceWith(h('p', { class: 'success', role: 'status' }, 'Your password is changed. Every other session was logged out. ',
          h('a', { href: '/login' }, 'Log in')));
      },
    }));
}

/** `/invitations/accept?token=…`: the invited user logs in (or signs up), then joins. */
export async function acceptInvitationPage(ctx) {
  const fromLink = takeToken(ctx);
  if (fromLink) sessionStorage.setItem(INVITATION, fromLink);
  const token = sessionStorage.getItem(INVITATION);
  replace(ctx.main, h('h1', {}, 'Accept the invitation'));
  if (!token) {
    ctx.main.append(h('p', {}, 'Open the link from the invitation e-mail.'));
    return;
  }
  if (!ctx.user) {
    const next = encodeURIComponent('/invitations/accept');
    ctx.main.append(
      h('p', {}, 'Log in or create an account with the address the invitation was sent to, then accept it.'),
      h('p', { class: 'row' }, h('a', { class: 'btn', href: `/login?next=${next}` }, 'Log in'), ' ',
        h('a', { class: 'btn', href: `/signup?next=${next}` }, 'Sign up')));
    return;
  }
  const before = new Set((ctx.user.tenants || []).map((t) => t.slug));
  const button = h('button', { type: 'button', class: 'primary' }, 'Accept and join');
  const status = h('div', { 'aria-live': 'polite' });
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const member = await api('POST', '/api/v1/invitations/accept', { token });
      sessionStorage.removeItem(INVITATION);
      const me = await ctx.reloadMe();
      const joined = (me.tenants || []).find((t) => !before.has(t.slug));
      toast(`You joined as ${member.role}.`);
      ctx.navigate(joined ? `/tenants/${encodeURIComponent(joined.slug)}/numbers` : '/tenants');
    } catch (error) {
      replace(status, errorBox(error));
      if (error.code === 'email_not_verified' || /verify/.test(error.message)) {
        status.append(h('p', {}, 'Open the confirmation link we e-mailed you, then come back to this page.'));
      }
      button.disabled = false;
    }
  });
  ctx.main.append(h('p', {}, `Logged in as ${ctx.user.user ? ctx.user.user.email : 'an API key'}.`), button, status);
}

/** `/tenants`: the caller's tenants (the tenant switcher's page). */
export function tenantsPage(ctx) {
  const tenants = ctx.user.tenants || [];
  replace(ctx.main, h('h1', {}, 'Your tenants'),
    tenants.length === 0
      ? h('p', {}, 'You are not a member of any tenant yet. Accept an invitation, or sign up with a company.')
      : h('ul', { class: 'tenants' }, tenants.map((t) => h('li', {},
        h('a', { href: `/tenants/${encodeURIComponent(t.slug)}/numbers` }, t.name), ` — ${t.role}`))));
}
