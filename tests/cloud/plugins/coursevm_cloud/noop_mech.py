"""An ML2 mechanism driver for a cloud without a data plane.

There are no agents: nothing would ever bind a port (Nova then fails the
server with "Binding failed") and no L3 agent would ever report a floating IP
up (clients that wait for ACTIVE time out). This driver binds every port on
every segment as an OVS port that is immediately ACTIVE, and sets a floating
IP ACTIVE when it is associated with a port and DOWN when it is not, as an L3
agent would after programming the address. A floating IP of a server backed by a
real machine (machine_link) is routed to that machine.
"""

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.callbacks import events
from neutron_lib.callbacks import registry
from neutron_lib.callbacks import resources
from neutron_lib.plugins import constants as plugin_constants
from neutron_lib.plugins import directory
from neutron_lib.plugins.ml2 import api
from oslo_log import log as logging

from coursevm_cloud import machine_link

LOG = logging.getLogger(__name__)


class NoopMechanismDriver(api.MechanismDriver):

    def initialize(self):
        registry.subscribe(self._floatingip_changed, resources.FLOATING_IP, events.AFTER_CREATE)
        registry.subscribe(self._floatingip_changed, resources.FLOATING_IP, events.AFTER_UPDATE)
        if machine_link.enabled():
            registry.subscribe(self._floatingip_deleted, resources.FLOATING_IP, events.AFTER_DELETE)
        LOG.info("coursevm_noop mechanism driver: binding every port, floating IPs follow association")

    def bind_port(self, context):
        # Any segment will do (flat public, vxlan tenant networks): there is no wire behind either.
        segment = context.segments_to_bind[0]
        context.set_binding(
            segment[api.ID],
            portbindings.VIF_TYPE_OVS,
            {portbindings.CAP_PORT_FILTER: True, portbindings.OVS_HYBRID_PLUG: False},
            status=constants.PORT_STATUS_ACTIVE,
        )

    @staticmethod
    def _floatingip_changed(resource, event, trigger, payload):
        fip = payload.latest_state
        NoopMechanismDriver._route_to_machine(payload.context, fip)
        wanted = constants.FLOATINGIP_STATUS_ACTIVE if fip.get("port_id") else constants.FLOATINGIP_STATUS_DOWN
        if fip.get("status") == wanted:
            return
        l3 = directory.get_plugin(plugin_constants.L3)
        if l3 is None:
            return
        l3.update_floatingip_status(payload.context.elevated(), payload.resource_id or fip["id"], wanted)

    @staticmethod
    def _route_to_machine(context, fip):
        """The floating IP reaches the machine of the server behind its port, or no machine at all."""
        if not machine_link.enabled():
            return
        address = fip.get("floating_ip_address")
        try:
            if fip.get("port_id"):
                port = directory.get_plugin().get_port(context.elevated(), fip["port_id"])
                if port.get("device_id") and machine_link.answer(port["device_id"], address):
                    return
            # Not (or no longer) a machine's: whichever machine held it lets it go.
            machine_link.unanswer(address)
        except Exception as err:  # noqa: BLE001 - a test rig's routing must never fail an API call
            machine_link.log_failure("routing %s" % address, err)

    @staticmethod
    def _floatingip_deleted(resource, event, trigger, payload):
        fip = payload.states[0] if payload.states else {}
        if fip.get("floating_ip_address"):
            try:
                machine_link.unanswer(fip["floating_ip_address"])
            except Exception as err:  # noqa: BLE001
                machine_link.log_failure("unrouting %s" % fip["floating_ip_address"], err)
