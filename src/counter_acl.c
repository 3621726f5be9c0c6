/*-------------------------------------------------------------------------
 *
 * counter_acl.c
 *	  Who may read and change a counter: its owner and its privileges, kept
 *	  the way PostgreSQL keeps them for a sequence.
 *
 * Every counter has an owner (the role that created it) and an ACL in its
 * definition row (counter_store.c).  A NULL ACL means the default: the
 * owner, and roles that have the owner's privileges, may do everything;
 * nobody else anything.  Two privileges can be granted per counter:
 *
 *	 SELECT		read it: value(), and its value in the counters view
 *	 UPDATE		change it: increment(), set()
 *
 * Dropping it, granting and revoking, and giving it away are for its owner
 * (and roles that have the owner's privileges) alone; superusers may do
 * anything.  The ACL is a PostgreSQL aclitem[], checked with aclmask(), so
 * grants to PUBLIC and through role membership work as they do for
 * tables; grant options are not supported.  A counter that tracks a table
 * is not governed by this at all: reading it needs what reading the
 * table's rows needs (tracking.c), and nobody changes it by hand.
 *
 * Why per-counter privileges rather than EXECUTE on the functions: a
 * counter is a shared object like a sequence, and one role's counters must
 * be safe from another's increments, whoever may call increment().
 *
 * No state of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "parser/scansup.h"
#include "utils/formatting.h"

#include "event_stats.h"

PG_FUNCTION_INFO_V1(es_grant_counter);
PG_FUNCTION_INFO_V1(es_revoke_counter);
PG_FUNCTION_INFO_V1(es_alter_counter_owner);

/* Does role hold any of the privileges in mode on the counter? */
static bool
counter_has_privilege(const CounterDef *def, Oid roleid, AclMode mode)
{
	if (superuser_arg(roleid))
		return true;
	/* the default ACL grants everything to the owner and nothing else */
	if (def->acl == NULL)
		return has_privs_of_role(roleid, def->owner);
	return aclmask(def->acl, roleid, def->owner, mode, ACLMASK_ANY) != 0;
}

bool
counter_may(const CounterDef *def, AclMode mode)
{
	return counter_has_privilege(def, GetUserId(), mode);
}

void
counter_require(const CounterDef *def, AclMode mode)
{
	if (!counter_may(def, mode))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for counter \"%s\"", def->name),
				 errhint("The counter's owner, role \"%s\", can grant %s on it with event_stats.grant_counter().",
						 GetUserNameFromId(def->owner, true) ?
						 GetUserNameFromId(def->owner, true) : "?",
						 (mode & ACL_UPDATE) ? "UPDATE" : "SELECT")));
}

/* Raises an error unless the current role may act as the counter's owner. */
static void
counter_require_owner(const CounterDef *def)
{
	if (!superuser() && !has_privs_of_role(GetUserId(), def->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of counter \"%s\"", def->name)));
}

/*
 * The newest committed definition of the counter, locked against other
 * changes of its owner, privileges or existence until the transaction
 * ends, for a change that only its owner may make.
 */
void
counter_lock_as_owner(CounterId id, const char *function, CounterDef *def)
{
	tracking_refuse_manual_change(id, function);
	store_lock_definition(id);
	counter_get(id, def);
	counter_require_owner(def);
}

/*
 * Parses a privilege list such as 'SELECT, UPDATE' or 'ALL PRIVILEGES', in
 * any case, the way GRANT reads its own.
 */
static AclMode
counter_parse_privileges(text *privileges)
{
	char	   *list = text_to_cstring(privileges);
	char	   *words = asc_tolower(list, strlen(list));
	AclMode		mode = ACL_NO_RIGHTS;
	char	   *word = words;

	for (;;)
	{
		char	   *comma = strchr(word, ',');
		char	   *end;

		if (comma != NULL)
			*comma = '\0';
		/* trim, and fold inner white space to one blank */
		while (scanner_isspace(*word))
			word++;
		end = word + strlen(word);
		while (end > word && scanner_isspace(end[-1]))
			*--end = '\0';

		if (strcmp(word, "select") == 0)
			mode |= ACL_SELECT;
		else if (strcmp(word, "update") == 0)
			mode |= ACL_UPDATE;
		else if (strcmp(word, "all") == 0 ||
				 (strncmp(word, "all", 3) == 0 && scanner_isspace(word[3]) &&
				  strcmp(word + 3 + strspn(word + 3, " \t\n\r\f\v"), "privileges") == 0))
			mode |= ACL_SELECT | ACL_UPDATE;
		else if (*word == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid privilege list \"%s\"", list),
					 errhint("Name SELECT, UPDATE or ALL, separated by commas.")));
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized privilege type: \"%s\"", word),
					 errhint("Counters have the privileges SELECT and UPDATE.")));
		if (comma == NULL)
			break;
		word = comma + 1;
	}
	return mode;
}

/*
 * The ACL that a NULL one stands for, written out: SELECT and UPDATE for
 * the owner.  (A sequence's default also has USAGE, which counters lack.)
 */
static Acl *
counter_default_acl(Oid owner)
{
	AclItem		usage;

	usage.ai_grantee = owner;
	usage.ai_grantor = owner;
	ACLITEM_SET_PRIVS_GOPTIONS(usage, ACL_USAGE, ACL_NO_RIGHTS);
	return aclupdate(acldefault(OBJECT_SEQUENCE, owner), &usage,
					 ACL_MODECHG_DEL, owner, DROP_CASCADE);
}

/* grant_counter / revoke_counter (counter, privileges text, grantee name) */
static void
counter_change_acl(FunctionCallInfo fcinfo, bool is_grant)
{
	const char *function = is_grant ? "event_stats.grant_counter()" :
		"event_stats.revoke_counter()";
	CounterDef	def;
	AclMode		mode;
	Oid			grantee;
	AclItem		item;
	Acl		   *acl;

	es_require_preload();
	for (int i = 0; i < 3; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s: argument %d must not be null", function, i + 1)));
	PreventCommandIfReadOnly(function);
	mode = counter_parse_privileges(PG_GETARG_TEXT_PP(1));
	/* 'public' is PUBLIC, as for has_table_privilege(); no role has that name */
	grantee = get_role_oid_or_public(NameStr(*PG_GETARG_NAME(2)));

	counter_lock_as_owner(PG_GETARG_INT32(0), function, &def);

	acl = def.acl ? def.acl : counter_default_acl(def.owner);
	item.ai_grantee = grantee;
	item.ai_grantor = def.owner;
	ACLITEM_SET_PRIVS_GOPTIONS(item, mode, ACL_NO_RIGHTS);
	acl = aclupdate(acl, &item, is_grant ? ACL_MODECHG_ADD : ACL_MODECHG_DEL,
					def.owner, DROP_CASCADE);
	store_set_owner_acl(def.id, def.owner, acl);
}

/*
 * grant_counter(counter, privileges text, grantee name) RETURNS void
 */
Datum
es_grant_counter(PG_FUNCTION_ARGS)
{
	counter_change_acl(fcinfo, true);
	PG_RETURN_VOID();
}

/*
 * revoke_counter(counter, privileges text, grantee name) RETURNS void
 */
Datum
es_revoke_counter(PG_FUNCTION_ARGS)
{
	counter_change_acl(fcinfo, false);
	PG_RETURN_VOID();
}

/*
 * alter_counter_owner(counter, new_owner regrole) RETURNS void
 *
 * The rules of ALTER SEQUENCE ... OWNER TO: the current owner (or a
 * superuser) may give the counter to a role it is a member of.
 */
Datum
es_alter_counter_owner(PG_FUNCTION_ARGS)
{
	const char *function = "event_stats.alter_counter_owner()";
	CounterDef	def;
	Oid			new_owner;

	es_require_preload();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("counter and new owner must not be null")));
	PreventCommandIfReadOnly(function);
	new_owner = PG_GETARG_OID(1);
	if (!OidIsValid(new_owner) || GetUserNameFromId(new_owner, true) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", new_owner)));

	counter_lock_as_owner(PG_GETARG_INT32(0), function, &def);
	if (!superuser())
		check_is_member_of_role(GetUserId(), new_owner);

	store_set_owner_acl(def.id, new_owner,
						def.acl ? aclnewowner(def.acl, def.owner, new_owner) : NULL);
	PG_RETURN_VOID();
}
