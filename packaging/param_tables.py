import sys, json
sys.path.insert(0,'/usr/share/ganeti/3.0')
from unittest import mock
for m in ['OpenSSL','OpenSSL.crypto','OpenSSL.SSL','pyparsing','pycurl','bitarray','pyinotify','simplejson','psutil']:
    try: __import__(m)
    except Exception: sys.modules[m]=mock.MagicMock(version_info=(5,0,0))
from ganeti import hypervisor
from ganeti import constants as C

KIND = {'bool':'Bool','int':'Int','float':'Float','size':'Size','string':'String','maybe-string':'MaybeString'}
def enum_of_hv(hv, k):
    cls = hypervisor._HYPERVISOR_MAP[hv]
    v = cls.PARAMETERS.get(k)
    if not v: return [], False
    req = bool(v[0])
    err = v[2]
    if err and 'must be one of: ' in str(err):
        return sorted(x.strip() for x in str(err).split('one of: ')[1].split(',')), req
    if k == 'migration_mode': return sorted(C.HT_MIGRATION_MODES), req
    return [], req

def rs(s): return json.dumps(s)
def spec(name, kind, default, allowed=(), required=False):
    al = ", ".join(rs(a) for a in allowed)
    return '    ParamSpec { name: %s, kind: ParamKind::%s, default: %s, allowed: &[%s], required: %s },' % (
        rs(name), KIND[kind], rs(json.dumps(default)), al, 'true' if required else 'false')

out = []
out.append("//! Parameter tables of Ganeti 3.0, generated from its constants (names,")
out.append("//! kinds, defaults, allowed values) by `tools/param_tables.py`; regenerate\n//! rather than edit by hand.")
out.append("")
out.append("use super::{ParamKind, ParamSpec};")
out.append("")
out.append("/// Hypervisor parameters (`HVC_DEFAULTS`, `HVS_PARAMETER_TYPES`), per hypervisor.")
out.append("pub(super) static HV: &[(&str, &[ParamSpec])] = &[")
for hv in sorted(C.HYPER_TYPES):
    out.append("    (%s, &[" % rs(hv))
    for k, d in sorted(C.HVC_DEFAULTS[hv].items()):
        al, req = enum_of_hv(hv, k)
        out.append("    " + spec(k, C.HVS_PARAMETER_TYPES[k], d, al, req))
    out.append("    ]),")
out.append("];")
out.append("")
def family(title, const, defaults, types, enums={}):
    out.append("/// %s" % title)
    out.append("pub(super) static %s: &[ParamSpec] = &[" % const)
    for k, d in sorted(defaults.items()):
        out.append(spec(k, types[k], d, enums.get(k, ())))
    out.append("];")
    out.append("")
family("Backend parameters (`BEC_DEFAULTS`, `BES_PARAMETER_TYPES`).", "BE", C.BEC_DEFAULTS, C.BES_PARAMETER_TYPES)
family("NIC parameters (`NICC_DEFAULTS`, `NICS_PARAMETER_TYPES`).", "NIC", C.NICC_DEFAULTS, C.NICS_PARAMETER_TYPES, {'mode': sorted(C.NIC_VALID_MODES)})
family("Node parameters (`NDC_DEFAULTS`, `NDS_PARAMETER_TYPES`).", "ND", C.NDC_DEFAULTS, C.NDS_PARAMETER_TYPES)
family("Hypervisor state parameters (`HVST_DEFAULTS`).", "HV_STATE", C.HVST_DEFAULTS, C.HVSTS_PARAMETER_TYPES)
out.append("/// Disk parameters (`DISK_DT_DEFAULTS`, `DISK_DT_TYPES`), per disk template.")
out.append("pub(super) static DISK: &[(&str, &[ParamSpec])] = &[")
for dt in sorted(C.DISK_TEMPLATES):
    out.append("    (%s, &[" % rs(dt))
    for k, d in sorted(C.DISK_DT_DEFAULTS[dt].items()):
        al = sorted(C.DISK_VALID_ACCESS_MODES) if k == 'access' else ()
        out.append("    " + spec(k, C.DISK_DT_TYPES[k], d, al))
    out.append("    ]),")
out.append("];")
out.append("")
out.append("/// The cluster's default instance policy (`IPOLICY_DEFAULTS`), as JSON.")
ip = dict(C.IPOLICY_DEFAULTS)
ip['disk-templates'] = list(C.DISK_TEMPLATE_PREFERENCE)
out.append("pub(super) const IPOLICY_DEFAULTS_JSON: &str = %s;" % rs(json.dumps(ip, sort_keys=True)))
out.append("")
out.append("/// Hypervisor parameters that are cluster-wide only (`HVC_GLOBALS`).")
out.append("pub(super) const HV_GLOBALS: &[&str] = &[%s];" % ", ".join(rs(x) for x in sorted(C.HVC_GLOBALS)))
out.append("/// Node parameters that are cluster-wide only (`NDC_GLOBALS`).")
out.append("pub(super) const ND_GLOBALS: &[&str] = &[%s];" % ", ".join(rs(x) for x in sorted(C.NDC_GLOBALS)))
print("\n".join(out))
